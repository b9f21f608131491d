"""Every page's script run on the issue #9 data set, as a ratio to a one-line page, under Streamlit's AppTest.

    python benchmarks/pages.py                     # seeds /tmp/pages-bench/scale100-likes1000000 once, reuses it
    python benchmarks/pages.py --rounds 5          # quicker
    python benchmarks/pages.py --pages Wallet,Community
    python benchmarks/pages.py --data-dir DIR --fresh   # seed DIR again from scratch

The data set is ``python -m studio_core seed-demo --scale 100 --likes 1000000``: 2,000 users, ~100,000 images,
~10,600 posts with 1,000,000 likes, ~107,000 ledger entries and ~2,000,000 analytics events (the 1,000,000 that
``--scale 100`` makes, plus one ``like`` event per like added). It is seeded once into ``--data-dir`` (the
SQLite file and the images) and reused by later runs, and by ``benchmarks/memory.py``.

What is measured: ``AppTest.run()`` of the real entry script ``streamlit_app.py``, signed in, on one page. So a
page's figure is the page *through the app shell*: settings, the cached Studio, the sign-in gate reading the
user row, role-based ``st.navigation``, the page-view tracker, the user menu, the month's allowance check and
the sidebar wallet bar, then the page -- plus AppTest's own work (a script runner thread, turning the messages
into an element tree). Beside it, in the same process and interleaved with it (one-line run, page run, one-line
run, ...; the order shuffled every round, so whatever else the machine does weighs on both sides):

- the one-line page: ``AppTest.run()`` of ``import streamlit as st; st.write("x")`` on its own. The target
  (issue #9) is every page <= 4x this one, arriving and rerunning ("x 1-line");
- for context, the same one-line page *through the app shell* (registered in the navigation for this run
  only, as the same user): what the shell costs every page. "x shell" is a page's run over that one: the
  page's own weight.

Each page is timed two ways every round: *arrive* (``switch_page`` to it from another page, then run: a click
in the navigation, which also records the page view, a write) and *rerun* (run it again where it is: what any
widget interaction on it costs before the widget's own work). ``--floor`` also times each grid page (Community,
My Creations) with its grid drawing nothing ("no cards"), beside the real one: the page's filters, its query
and the shell alone, i.e. what no way of drawing the cards can go under. Also printed, as medians: the time inside
``page.run()`` (the page script itself), the elements it sent (deltas: elements and layout blocks) and the SQL
statements the script thread ran.

Runs as the server runs: the app's ``.streamlit/config.toml`` (no usage statistics gathered per command) and
each script compiled once (AppTest compiles both scripts on every run; ``--recompile`` measures that too). The
heavy user is the history account with the most images (``--user`` picks another); the admin is the demo admin,
who has no images of their own but sees every admin page. Garbage is collected, untimed, before every run.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._dataset import (  # noqa: E402
    ADMIN_EMAIL,
    LIKES,
    PASSWORD,
    ROOT,
    SCALE,
    default_data_dir,
    ensure_dataset,
    heavy_users,
    use_app_env,
    user_profile,
)

TARGET = 4.0
ONE_LINE = 'import streamlit as st\nst.write("x")\n'
RUN_TIMEOUT = 120
SHELL_ONE_LINE = "one-line page"  # the label of the one-line page through the shell
CREATOR_PAGES = (("studio.py", "Studio"), ("wallet.py", "Wallet"), ("prompt_lab.py", "Prompt Lab"),
                 ("gallery.py", "My Creations"), ("community.py", "Community"), ("account.py", "Account"))
GRID_PAGES = ("My Creations", "Community")
NO_CARDS = " · no cards"  # the label suffix of a grid page timed with its grid drawing nothing (--floor)
ADMIN_PAGES = (("admin_moderation.py", "Moderation"), ("admin_catalog.py", "Catalog"),
               ("admin_users.py", "Users"), ("admin_analytics.py", "Analytics"))


@dataclass
class Probe:
    """What the script thread did during one run: time inside page.run(), SQL statements, elements sent."""

    page_s: float = 0.0
    sql_n: int = 0
    elements: int = 0

    def reset(self) -> None:
        self.page_s, self.sql_n, self.elements = 0.0, 0, 0


PROBE = Probe()


class Cards:
    drawn = True  # False while a "no cards" variant runs


def install_card_switch() -> None:
    """The grid pages import ``cards.grid`` on every run, so a wrapper here decides per run whether it draws."""
    from studio_core.ui import cards

    grid = cards.grid

    def switched(items, render) -> None:
        if Cards.drawn:
            grid(items, render)

    cards.grid = switched


def _script_thread() -> bool:
    # AppTest runs the script on a ScriptRunner thread; job workers and the Prompt Lab driver are not counted
    return threading.current_thread().name.startswith("ScriptRunner")


def install_probes() -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from streamlit.navigation.page import StreamlitPage
    from streamlit.runtime.scriptrunner_utils.script_run_context import ScriptRunContext

    @event.listens_for(Engine, "before_cursor_execute")
    def _count(conn, cursor, statement, parameters, context, executemany):
        if _script_thread():
            PROBE.sql_n += 1

    enqueue = ScriptRunContext.enqueue

    def counted_enqueue(self, msg) -> None:
        if msg.HasField("delta"):  # an element or a layout block, as the browser receives them
            PROBE.elements += 1
        enqueue(self, msg)

    ScriptRunContext.enqueue = counted_enqueue

    run = StreamlitPage.run

    def timed_run(self) -> None:
        started = time.perf_counter()
        try:
            run(self)
        finally:
            PROBE.page_s += time.perf_counter() - started

    StreamlitPage.run = timed_run


def app_working_dir(cwd: Path) -> None:
    """Work in ``cwd`` with the app's own Streamlit config (as ``streamlit run`` in the checkout has it: no
    usage statistics gathered per command, for one) but no stray .env or secrets.toml from the checkout."""
    (cwd / ".streamlit").mkdir()
    shutil.copy(ROOT / ".streamlit" / "config.toml", cwd / ".streamlit" / "config.toml")
    os.chdir(cwd)
    import streamlit as st

    if st.get_option("browser.gatherUsageStats"):
        raise SystemExit("Streamlit's config was read before the app's config.toml was in place")


def compile_once() -> None:
    """AppTest builds a new ScriptCache for every run, so it parses, rewrites (magic) and compiles the entry
    script and the page on each one; ``streamlit run`` keeps one ScriptCache for the life of the server and
    compiles each script once. Share one here too, so a figure is what a run costs in the app."""
    from streamlit.runtime.scriptrunner.script_cache import ScriptCache
    from streamlit.testing.v1 import app_test, local_script_runner

    shared = ScriptCache()
    app_test.ScriptCache = local_script_runner.ScriptCache = lambda: shared  # pages; the entry script


def register_one_line_page(path: Path) -> None:
    """Put the one-line page into every user's navigation, in this process only: the real entry script then
    runs its whole shell around it, as it does around every page."""
    import streamlit as st

    from studio_core.ui import navigation

    path.write_text(ONE_LINE)
    pages_for = navigation.pages_for

    def with_one_line_page(user):
        sections = pages_for(user)
        sections["Benchmark"] = [st.Page(str(path), title="One-line page", url_path="bench-one-line")]
        return sections

    navigation.pages_for = with_one_line_page  # the entry script imports it by name on every run


def _app():
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=RUN_TIMEOUT)


def _check(at, what: str):
    if at.exception:
        raise SystemExit(f"{what}: the script raised {[e.value for e in at.exception]}")
    return at


def signed_in(email: str):
    at = _check(_app().run(), "sign-in page")
    at.text_input(key="sign_in_email").input(email)
    at.text_input(key="sign_in_password").input(PASSWORD)
    at.button(key="sign_in_submit").click()
    _check(at.run(), f"sign in as {email}")
    if "sign_out" not in [b.key for b in at.button]:
        raise SystemExit(f"could not sign in as {email}: {[e.value for e in at.error]}")
    return at


def timed(run) -> tuple[float, Probe]:
    gc.collect()
    PROBE.reset()
    started = time.perf_counter()
    run()
    elapsed = time.perf_counter() - started
    return elapsed, Probe(PROBE.page_s, PROBE.sql_n, PROBE.elements)


Runs = dict[tuple[str, str], dict[str, list[tuple[float, Probe]]]]


def measure(sessions: dict[str, object], plan: list[tuple[str, str, str]], rounds: int, seed: int = 9
            ) -> tuple[list[float], Runs]:
    """``plan``: (role, page path, label). Returns the one-line runs and, per (role, label), its timed runs by
    kind (arrive / rerun) with what the probes saw."""
    from streamlit.testing.v1 import AppTest

    one_line = AppTest.from_string(ONE_LINE, default_timeout=RUN_TIMEOUT)
    baseline: list[float] = []
    runs: Runs = defaultdict(lambda: defaultdict(list))
    rng = random.Random(seed)
    where: dict[str, str] = {}
    for round_ in range(rounds + 1):  # round 0 warms up: imports, the Studio, statement caches, thumbnails
        order = plan[:]
        rng.shuffle(order)
        for role, page, label in order:
            at = sessions[role]
            Cards.drawn = not label.endswith(NO_CARDS)
            if where.get(role) == page:  # arriving means coming from another page
                elsewhere = "app_pages/account.py" if not page.endswith("account.py") else "app_pages/studio.py"
                at.switch_page(elsewhere)
                _check(at.run(), f"{role}: leaving {label}")
            for kind in ("arrive", "rerun"):
                base_s, _ = timed(lambda: _check(one_line.run(), "one-line page"))
                if kind == "arrive":
                    at.switch_page(page)
                page_s, probe = timed(lambda at=at, what=f"{role} on {label}": _check(at.run(), what))
                if round_:
                    baseline.append(base_s)
                    runs[(role, label)][kind].append((page_s, probe))
            where[role] = page
        print(f"  round {round_}/{rounds} done" if round_ else "  warm-up round done", flush=True)
    return baseline, runs


def report(baseline: list[float], runs: Runs, plan: list[tuple[str, str, str]]) -> bool:
    base = statistics.median(baseline)
    med = {key: {kind: statistics.median(t for t, _ in by_kind[kind]) for kind in ("arrive", "rerun")}
           for key, by_kind in runs.items()}
    print(f"\none-line page on its own: {base * 1000:.1f} ms (median of {len(baseline)} runs)")
    for role in dict.fromkeys(r for r, _, _ in plan):
        shell = med[(role, SHELL_ONE_LINE)]
        print(f"one-line page through the app shell, as the {role}: arrive {shell['arrive'] * 1000:.1f} ms "
              f"({shell['arrive'] / base:.2f}x), rerun {shell['rerun'] * 1000:.1f} ms ({shell['rerun'] / base:.2f}x)")
    print(f"\n{'page':<25}{'as':<11}{'arrive':>8}{'x 1-line':>9}{'x shell':>8}{'rerun':>9}{'x 1-line':>9}"
          f"{'x shell':>8}{'page.run()':>11}{'elements':>9}{'SQL':>5}")
    met = met_shell = total = 0
    for role, _page, label in plan:
        if label == SHELL_ONE_LINE:
            continue
        total += 1
        shell = med[(role, SHELL_ONE_LINE)]
        arrive, rerun = med[(role, label)]["arrive"], med[(role, label)]["rerun"]
        probes = [p for kind in ("arrive", "rerun") for _, p in runs[(role, label)][kind]]
        inside = statistics.median(p.page_s for p in probes)
        elements = statistics.median(p.elements for p in probes)
        sql_n = statistics.median(p.sql_n for p in probes)
        ok = max(arrive, rerun) / base <= TARGET
        ok_shell = arrive / shell["arrive"] <= TARGET and rerun / shell["rerun"] <= TARGET
        met += ok
        met_shell += ok_shell
        print(f"{label:<25}{role:<11}{arrive * 1000:>6.1f}ms{arrive / base:>8.2f}x{arrive / shell['arrive']:>7.2f}x"
              f"{rerun * 1000:>7.1f}ms{rerun / base:>8.2f}x{rerun / shell['rerun']:>7.2f}x"
              f"{inside * 1000:>9.1f}ms{elements:>9.0f}{sql_n:>5.0f}"
              f"{'' if ok else '   MISSED' + ('' if ok_shell else ' (and x shell)')}")
    print(f"\ntarget (issue #9): every page <= {TARGET:.0f}x the one-line page: {met} of {total} page runs "
          f"meet it; measured against the one-line page through the app shell: {met_shell} of {total}")
    return met == total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="where the seeded data set is kept (default: /tmp/pages-bench/scale<N>-likes<M>)")
    parser.add_argument("--scale", type=int, default=SCALE, help="seed-demo --scale (default 100)")
    parser.add_argument("--likes", type=int, default=LIKES, help="seed-demo --likes (default 1,000,000)")
    parser.add_argument("--fresh", action="store_true", help="seed the data set again even if one is there")
    parser.add_argument("--rounds", type=int, default=15, help="measured rounds (the median is reported)")
    parser.add_argument("--user", help="the heavy user's email (default: the history account with most images)")
    parser.add_argument("--pages", help="only these pages (comma-separated labels, e.g. Wallet,Community)")
    parser.add_argument("--floor", action="store_true",
                        help="also time each grid page with its grid drawing nothing (labelled 'no cards')")
    parser.add_argument("--recompile", action="store_true",
                        help="compile the scripts on every run, as plain AppTest does (the server does it once)")
    args = parser.parse_args(argv)
    data_dir = (args.data_dir or default_data_dir(args.scale, args.likes)).resolve()
    ensure_dataset(data_dir, args.scale, args.likes, fresh=args.fresh)
    heavy = args.user or heavy_users(data_dir)[0]
    print(f"heavy user {heavy}: " + ", ".join(f"{n:,} {what}" for what, n in user_profile(data_dir, heavy).items()))

    use_app_env(data_dir)
    wanted = set(args.pages.split(",")) if args.pages else None
    with tempfile.TemporaryDirectory(prefix="pages-bench-") as cwd:
        app_working_dir(Path(cwd))
        one_line_page = Path(cwd) / "one_line_page.py"
        plan = [(role, str(ROOT / "app_pages" / file), label)
                for role, pages in (("heavy user", CREATOR_PAGES), ("admin", CREATOR_PAGES + ADMIN_PAGES))
                for file, label in pages if wanted is None or label in wanted]
        if args.floor:
            plan += [(role, page, label + NO_CARDS) for role, page, label in plan if label in GRID_PAGES]
        plan += [(role, str(one_line_page), SHELL_ONE_LINE) for role in dict.fromkeys(r for r, _, _ in plan)]
        install_probes()
        install_card_switch()
        register_one_line_page(one_line_page)
        if not args.recompile:
            compile_once()
        sessions = {"heavy user": signed_in(heavy), "admin": signed_in(ADMIN_EMAIL)}
        print(f"measuring {len(plan)} page/role pairs, {args.rounds} rounds ...", flush=True)
        baseline, runs = measure(sessions, plan, args.rounds)
    return 0 if report(baseline, runs, plan) else 1


if __name__ == "__main__":
    sys.exit(main())
