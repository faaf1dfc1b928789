"""Write the demo's numbers into README.md between its markers (make demo / make demo-full).

    python workflow/scripts/readme_demo.py --table results/tables/demo.csv \
        --lr results/tables/demo_lr.csv --readme README.md --wall-seconds 283
"""

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # the library, also when it is not pip-installed

from d2st.demo_report import machine_line, readme_block, update_readme  # noqa: E402


def reused_outputs(hashes_csv, since):
    """How many files listed in a stage-hash table are older than ``since`` (epoch seconds)."""
    import pandas as pd

    paths = pd.read_csv(hashes_csv)["path"]
    return sum(1 for p in paths if Path(p).is_file() and Path(p).stat().st_mtime < since)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", default="results/tables/demo.csv", help="the demo table")
    ap.add_argument("--lr", default="results/tables/demo_lr.csv", help="the lr selection table")
    ap.add_argument("--readme", default="README.md", help="the file with the markers")
    ap.add_argument("--wall-seconds", type=float, required=True, help="wall time of the run")
    ap.add_argument(
        "--marker", default="demo", help="marker pair <!-- NAME:start/end --> (demo, demo-full)"
    )
    ap.add_argument("--command", default="make demo", help="the command named in the block")
    ap.add_argument(
        "--since",
        type=float,
        help="epoch seconds the run started: README unchanged if the table is older; outputs "
        "older than this listed in {table}_hashes.csv make the time a partial rerun's",
    )
    ap.add_argument(
        "--metrics", nargs="*", help="metrics to show (default: all of the table's metrics)"
    )
    a = ap.parse_args(argv)
    for f in (a.table, a.lr, a.readme):
        if not Path(f).is_file():
            sys.exit(f"readme_demo: {f} not found")
    note = ""
    if a.since is not None:
        if Path(a.table).stat().st_mtime < a.since:
            print(f"{a.readme} unchanged: {a.table} was not rebuilt by this run")
            return
        hashes = Path(a.table).with_name(Path(a.table).stem + "_hashes.csv")
        if hashes.is_file():
            reused = reused_outputs(hashes, a.since)
            if reused:
                note = (
                    f"a partial rerun: {reused} earlier output(s) reused, not a from-scratch time"
                )
    block = readme_block(
        a.table,
        a.lr,
        machine_line(),
        a.wall_seconds,
        metrics=a.metrics,
        command=a.command,
        note=note,
    )
    try:
        update_readme(a.readme, block, name=a.marker)
    except ValueError as e:
        sys.exit(f"readme_demo: {e}")
    print(f"{a.readme}: demo numbers updated between <!-- {a.marker}:start/end -->")


if __name__ == "__main__":
    main()
