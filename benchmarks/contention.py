"""Two scoring jobs on shared cores: one job alone, then beside a second identical job, before and after.

"Before" is the environment proxybench used to leave alone (``PROXYBENCH_OMP_DEFAULTS=0``:
libgomp's spinning idle threads, one torch thread per core); "after" is proxybench's
defaults (:mod:`proxybench._threads`: ``OMP_WAIT_POLICY=PASSIVE``, threads = CPUs available
to the process). Each job is the same default command a user types, with no ``--threads``:

    proxybench score --space nb201 --sample 10 --proxies grad_norm,snip,synflow,nwot ...

Run on a quiet machine (nothing else on the cores):

    python benchmarks/contention.py --data-dir DATA [--repeats 2] [--csv contention.csv]

Prints, per setting, the job's wall time alone, beside a second job, and the ratio (a fair
share of the cores is 2x; the target is at most 2.5x with the job alone no slower than before).
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time


def job(data_dir: str, out: str, env: dict[str, str], sample: int, proxies: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "proxybench_cli.main", "score", "--space", "nb201", "--sample", str(sample),
               "--proxies", proxies, "--data-dir", data_dir, "--no-download", "--out", out, "-q"]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def timed(procs: list[subprocess.Popen], started: float) -> list[float]:
    walls = []
    for proc in procs:
        _, err = proc.communicate()
        walls.append(time.perf_counter() - started)
        if proc.returncode != 0:
            raise SystemExit(f"a job failed ({proc.returncode}): {err.strip().splitlines()[-1:]}")
    return walls


def measure(data_dir: str, env: dict[str, str], jobs: int, sample: int, proxies: str) -> float:
    """Wall seconds of the first of ``jobs`` identical jobs started together (each into its own OUT)."""
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        procs = [job(data_dir, os.path.join(tmp, f"out{i}"), env, sample, proxies) for i in range(jobs)]
        return statistics.mean(timed(procs, started))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--sample", type=int, default=10)
    parser.add_argument("--proxies", default="grad_norm,snip,synflow,nwot")
    parser.add_argument("--repeats", type=int, default=1, help="repeat each measurement; the median is reported")
    parser.add_argument("--csv", default=None)
    args = parser.parse_args()
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS")}
    settings = {"before (libgomp defaults)": {**base, "PROXYBENCH_OMP_DEFAULTS": "0"},
                "after (proxybench defaults)": {**base, "PROXYBENCH_OMP_DEFAULTS": "1"}}
    rows = []
    for name, env in settings.items():
        alone = statistics.median(measure(args.data_dir, env, 1, args.sample, args.proxies) for _ in range(args.repeats))
        pair = statistics.median(measure(args.data_dir, env, 2, args.sample, args.proxies) for _ in range(args.repeats))
        rows.append({"setting": name, "alone_s": round(alone, 1), "beside_second_job_s": round(pair, 1),
                     "ratio": round(pair / alone, 2)})
        print(f"{name:30s} alone {alone:7.1f} s   beside a second job {pair:7.1f} s   ratio {pair / alone:5.2f}x",
              flush=True)
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":
    main()
