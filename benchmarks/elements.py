"""What Streamlit elements cost per script run under AppTest, as a ratio to a one-line page: the floor under
every page of benchmarks/pages.py (see docs/decisions/0008-page-weight.md).

    python benchmarks/elements.py               # 64 of each, 40 rounds
    python benchmarks/elements.py --n 16 --rounds 60

Each script draws ``--n`` of one kind of element: captions, buttons, buttons with an icon and help (like a
community card's), keyed select boxes (each walks the session state), and bordered containers. Beside each, in
the same process and interleaved round by round (order shuffled, garbage collected before each run), the
one-line page ``st.write("x")``. Printed: the median run, its ratio to the one-line page, and the cost of one
element over the one-line page.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time

ONE_LINE = 'import streamlit as st\nst.write("x")\n'
KINDS = {
    "caption": 'st.caption(f"by Ada · Portraits {i}")',
    "button": 'st.button(f"Like · {i}", key=f"b{i}")',
    "button with icon and help": ('st.button(f"Like · {i}", key=f"b{i}", icon=":material/favorite:", '
                                  'help="Like this post")'),
    "keyed selectbox": 'st.selectbox("Role", ["creator", "admin"], key=f"s{i}")',
    "bordered container": 'st.container(border=True)',
}


def script(body: str, n: int) -> str:
    return f"import streamlit as st\nfor i in range({n}):\n    {body}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=64, help="elements of each kind per script (default 64)")
    parser.add_argument("--rounds", type=int, default=40, help="measured rounds (default 40)")
    args = parser.parse_args(argv)
    from streamlit.testing.v1 import AppTest

    apps = {"one-line page": AppTest.from_string(ONE_LINE)}
    apps |= {f"{args.n} x {kind}": AppTest.from_string(script(body, args.n)) for kind, body in KINDS.items()}
    runs: dict[str, list[float]] = {name: [] for name in apps}
    rng = random.Random(8)
    for round_ in range(args.rounds + 3):  # three warm-up rounds
        order = list(apps)
        rng.shuffle(order)
        for name in order:
            gc.collect()
            started = time.perf_counter()
            at = apps[name].run()
            elapsed = time.perf_counter() - started
            if at.exception:
                raise SystemExit(f"{name}: {at.exception[0].value}")
            if round_ >= 3:
                runs[name].append(elapsed)
    base = statistics.median(runs["one-line page"])
    print(f"{'script':<36}{'median':>10}{'x 1-line':>10}{'per element':>13}")
    for name, times in runs.items():
        med = statistics.median(times)
        each = "" if name == "one-line page" else f"{(med - base) / args.n * 1e6:>10.0f} µs"
        print(f"{name:<36}{med * 1000:>8.2f}ms{med / base:>9.2f}x{each:>13}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
