"""Start-up time of the ``proxybench`` command line: wall seconds per command, and whether torch was imported.

Commands that only read metadata (``--help``, ``--version``, ``proxies``, ``presets``,
``space``, ``status``) should start in well under a second; importing torch alone takes
2-3 s on a cold CPU machine, so each row also says whether the command imported it.

Run:

    python benchmarks/startup.py                 # 5 runs per command, median and min
    python benchmarks/startup.py --runs 10 --json startup.json

Each run is a fresh ``python -c`` process calling the click group in-process (so the
interpreter start-up, ~20 ms, is included, as a user would see it) and reporting whether
``torch`` ended up in ``sys.modules``. Timings are wall clock on whatever machine runs it
and move with other jobs on the same cores; the torch column does not.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

COMMANDS: tuple[tuple[str, ...], ...] = (
    ("--help",),
    ("--version",),
    ("proxies",),
    ("presets",),
    ("space",),
    ("space", "nb201", "--sample", "5"),
    ("status", "{out}"),
)

_PROBE = """
import sys
from proxybench_cli.main import cli
try:
    cli.main(args={args!r}, prog_name="proxybench", standalone_mode=False)
finally:
    sys.stdout.flush()
    sys.stderr.write("TORCH_IMPORTED=%d\\n" % ("torch" in sys.modules))
"""


def run_once(args: list[str]) -> tuple[float, bool]:
    """Seconds for one fresh process running ``proxybench ARGS``, and whether it imported torch."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _PROBE.format(args=args)], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"proxybench {' '.join(args)} failed:\n{done.stderr}")
    return seconds, "TORCH_IMPORTED=1" in done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per command")
    parser.add_argument("--json", default=None, help="also write the rows as JSON to this file")
    options = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as out:
        os.makedirs(os.path.join(out, "scores"))  # an empty results directory for `status`
        for command in COMMANDS:
            args = [a.format(out=out) for a in command]
            times, torch_seen = [], False
            for _ in range(options.runs):
                seconds, imported = run_once(args)
                times.append(seconds)
                torch_seen |= imported
            label = " ".join(command).replace("{out}", "OUT")
            rows.append({"command": f"proxybench {label}", "median_s": statistics.median(times),
                         "min_s": min(times), "torch_imported": torch_seen, "runs": options.runs})
    width = max(len(r["command"]) for r in rows)
    print(f"{'command':<{width}}  median_s  min_s  torch")
    for r in rows:
        print(f"{r['command']:<{width}}  {r['median_s']:8.2f}  {r['min_s']:5.2f}  {'yes' if r['torch_imported'] else 'no'}")
    if options.json:
        with open(options.json, "w", encoding="utf-8") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()
