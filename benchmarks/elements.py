"""What Streamlit elements cost per script run under AppTest, as a ratio to a one-line page: the floor under
every page of benchmarks/pages.py (see docs/decisions/0008-page-weight.md).

    python benchmarks/elements.py               # 64 of each, 40 rounds
    python benchmarks/elements.py --n 16 --rounds 60

Each script draws ``--n`` of one kind of element: captions, buttons, buttons with an icon and help (like a
community card's), keyed select boxes (each walks the session state), bordered containers, and a 256 px
WebP thumbnail three ways: by its path (Streamlit reads it, opens it with PIL, re-encodes it as JPEG and hashes
it into its media files, every run), as JPEG bytes (opened and hashed every run), and as the data: URL that
``studio_core.ui.cards.image_source`` keeps for a small local picture (handed to the browser as it is); and a
12-row, 7-column table (like the catalog's) built as a pandas frame or as an Arrow table (``widgets.table``). Beside each, in
the same process and interleaved round by round (order shuffled, garbage collected before each run), the
one-line page ``st.write("x")``. Printed: the median run, its ratio to the one-line page, and the cost of one
element over the one-line page.
"""

from __future__ import annotations

import argparse
import gc
import io
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ONE_LINE = 'import streamlit as st\nst.write("x")\n'
KINDS = {
    "caption": 'st.caption(f"by Ada · Portraits {i}")',
    "button": 'st.button(f"Like · {i}", key=f"b{i}")',
    "button with icon and help": ('st.button(f"Like · {i}", key=f"b{i}", icon=":material/favorite:", '
                                  'help="Like this post")'),
    "keyed selectbox": 'st.selectbox("Role", ["creator", "admin"], key=f"s{i}")',
    "bordered container": 'st.container(border=True)',
}


_ROWS = ('ROWS = [{"Template": f"Template {i}", "Category": "Portraits", "Status": "Active", "Used": 1234 * i, '
         '"Succeeded": 0.92, "Posts": 3 * i, "Likes": 40 * i} for i in range(12)]\n')
TABLE_KINDS = {
    "12-row table as pandas": ("import pandas as pd\n" + _ROWS, "st.dataframe(pd.DataFrame(ROWS), hide_index=True)"),
    "12-row table as Arrow": ("import pyarrow as pa\n" + _ROWS,
                              "st.dataframe(pa.Table.from_pylist(ROWS), hide_index=True)"),
}


def script(body: str, n: int, setup: str = "") -> str:
    return f"import streamlit as st\n{setup}for i in range({n}):\n    {body}\n"


def picture_kinds(folder: Path) -> dict[str, tuple[str, str]]:
    """A thumbnail like the local store's (a WebP of a rendered picture), and the ways to draw it: (setup, body)."""
    from PIL import Image

    from studio_core.adapters import images
    from studio_core.adapters.procedural import render
    from studio_core.ui.cards import image_source

    webp = folder / "thumb.webp"
    webp.write_bytes(images.thumbnail_webp(Image.open(io.BytesIO(render("a harbour at dusk", 7, 512, 512)))))
    jpeg = folder / "thumb.jpg"
    Image.open(webp).convert("RGB").save(jpeg, format="JPEG", quality=90)
    data_url, _ = image_source(str(webp))
    return {
        "picture by its path (WebP)": ("", f'st.image({str(webp)!r}, width="stretch")'),
        "picture as JPEG bytes": (f"JPEG = open({str(jpeg)!r}, 'rb').read()\n",
                                  'st.image(JPEG, width="stretch", output_format="JPEG")'),
        "picture as a kept data: URL": (f"URL = {data_url!r}\n", 'st.image(URL, width="stretch")'),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=64, help="elements of each kind per script (default 64)")
    parser.add_argument("--rounds", type=int, default=40, help="measured rounds (default 40)")
    args = parser.parse_args(argv)
    from streamlit.testing.v1 import AppTest

    folder = Path(tempfile.mkdtemp(prefix="elements-bench-"))
    apps = {"one-line page": AppTest.from_string(ONE_LINE)}
    apps |= {f"{args.n} x {kind}": AppTest.from_string(script(body, args.n)) for kind, body in KINDS.items()}
    apps |= {f"{args.n} x {kind}": AppTest.from_string(script(body, args.n, setup))
             for kind, (setup, body) in (picture_kinds(folder) | TABLE_KINDS).items()}
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
    print(f"{'script':<40}{'median':>10}{'x 1-line':>10}{'per element':>13}")
    for name, times in runs.items():
        med = statistics.median(times)
        each = "" if name == "one-line page" else f"{(med - base) / args.n * 1e6:>10.0f} µs"
        print(f"{name:<40}{med * 1000:>8.2f}ms{med / base:>9.2f}x{each:>13}")
    shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
