"""The Streamlit server's resident memory with 20 open browser sessions, on the issue #9 data set.

    python benchmarks/memory.py                 # the data set of benchmarks/pages.py (seeded once, reused)
    python benchmarks/memory.py --sessions 5    # quicker

Starts ``streamlit run streamlit_app.py`` on that data (``start_app`` of the browser tests, offline providers)
and reads the server's RSS (``VmRSS`` in /proc/<pid>/status, child processes included) at these moments:

- idle: healthy, no session yet (nothing imported beyond Streamlit, no Studio built);
- 1 session: one browser session signed in that has opened its pages (the Studio object, the engine, pandas
  and plotly imported, the first thumbnails in the media cache);
- N sessions: N browser contexts (Debian's chromium through Playwright), each a different person signed in with
  the demo password -- the demo admin and the N-1 history accounts with the most images -- each having opened
  Studio, Community, My Creations and Wallet (the admin also Moderation and Analytics), all still open.

Target (issue #9): under 600 MB with 20 sessions. Also printed: what each session added on average, and the RSS
once every browser has gone (Streamlit drops a disconnected session's state at once).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._dataset import (  # noqa: E402
    ADMIN_EMAIL,
    LIKES,
    PASSWORD,
    SCALE,
    app_env,
    default_data_dir,
    ensure_dataset,
    heavy_users,
)
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, go, sign_in, start_app, stop_app  # noqa: E402

TARGET_MB = 600
CREATOR_PAGES = (("Community", "Community"), ("My Creations", "My Creations"), ("Wallet", "Wallet"))
ADMIN_PAGES = (("Analytics", "Analytics"),)


def rss_kb(pid: int) -> int:
    """VmRSS of the process and of all its descendants."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        total += int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1))
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    return total


def settle(pid: int, seconds: float = 3.0) -> int:
    """RSS once the server is quiet again (in-flight reruns finished, freed memory reused)."""
    time.sleep(seconds)
    return rss_kb(pid)


def open_session(browser, url: str, email: str, admin: bool):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)  # 20 sessions on a small machine
    sign_in(page, url, email, password=PASSWORD)
    for link, heading in CREATOR_PAGES + (ADMIN_PAGES if admin else ()):
        go(page, link, heading)
    if admin:
        go(page, "Moderation", "Moderation")
    return context


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="where the seeded data set is kept (default: the one benchmarks/pages.py uses)")
    parser.add_argument("--scale", type=int, default=SCALE)
    parser.add_argument("--likes", type=int, default=LIKES)
    parser.add_argument("--fresh", action="store_true", help="seed the data set again even if one is there")
    parser.add_argument("--sessions", type=int, default=20)
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"no browser at {CHROMIUM}: apt-get install chromium (never playwright install)")
    data_dir = (args.data_dir or default_data_dir(args.scale, args.likes)).resolve()
    ensure_dataset(data_dir, args.scale, args.likes, fresh=args.fresh)
    people = [(ADMIN_EMAIL, True)] + [(e, False) for e in heavy_users(data_dir, args.sessions - 1)]

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="memory-bench-") as tmp:
        proc, server = start_app(Path(tmp), app_env(data_dir))
        contexts = []
        try:
            figures = {"idle (0 sessions)": settle(proc.pid)}
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
                try:
                    for i, (email, admin) in enumerate(people, 1):
                        contexts.append(open_session(browser, server.url, email, admin))
                        if i == 1:
                            figures["1 session"] = settle(proc.pid)
                        print(f"  session {i}/{len(people)} open ({email}): "
                              f"{rss_kb(proc.pid) / 1024:.0f} MB", flush=True)
                    figures[f"{len(people)} sessions"] = settle(proc.pid)
                    for context in contexts:
                        context.close()
                    contexts = []
                finally:
                    browser.close()
            figures["all browsers gone"] = settle(proc.pid, 5.0)
        finally:
            stop_app(proc)
    n = len(people)
    print(f"\nStreamlit server RSS (process and children), {n} sessions on {data_dir}:")
    for what, kb in figures.items():
        print(f"  {what:<20}{kb / 1024:8.0f} MB")
    busy = figures[f"{n} sessions"] / 1024
    if n > 1:
        per = (figures[f"{n} sessions"] - figures["1 session"]) / 1024 / (n - 1)
        print(f"  each session after the first added {per:.1f} MB on average")
    ok = busy < TARGET_MB
    print(f"\ntarget: under {TARGET_MB} MB with {n} sessions: {busy:.0f} MB, " + ("met" if ok else "NOT met"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
