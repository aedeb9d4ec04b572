"""Assemble ``device_check.json`` and ``device_check.md`` from the steps of ``benchmarks/device_check.sh``.

Standard library only, so a report is written even when the installed environment is broken.
Input (``--work``): ``steps.jsonl`` (one line per step the script ran or skipped: name, rc,
seconds, limit), ``steps/<name>.json`` (the step's own result, where it writes one),
``logs/<name>.log`` (its output; the tail of a failed step goes into the report) and
``junit.xml`` (pytest's counts). Output (``--out``): the two files. Every figure that is an
extrapolation says so.
"""

from __future__ import annotations

import argparse
import json
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

TARGET_WHOLE_SPACE_MIN = 10.0
TARGET_FLOORS_PER_ARCH = 3.0
RATE_LABELS = {"rate_nodet": "zero-cost, PyTorch defaults (PROXYBENCH_CUDA_DETERMINISM=off: no determinism, TF32 on)"}


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _junit(path: Path) -> dict[str, Any] | None:
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        return None
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    failed = []
    for case in suite.iter("testcase"):
        for tag in ("failure", "error"):
            node = case.find(tag)
            if node is not None:
                failed.append({"test": case.get("name"), "message": (node.get("message") or "")[:500]})
    counts["failed_tests"] = failed
    skipped = {(node.get("message") or "") for c in suite.iter("testcase") if (node := c.find("skipped")) is not None}
    counts["skip_reasons"] = sorted(skipped)[:5]
    return counts


def collect(work: Path) -> dict[str, Any]:
    steps = []
    lines = (work / "steps.jsonl").read_text().splitlines() if (work / "steps.jsonl").exists() else []
    for line in lines:
        step = json.loads(line)
        name = step["name"]
        rc = step.get("rc")
        if step.get("skipped"):
            step["status"] = "skipped"
        elif rc == 0:
            step["status"] = "ok"
        elif rc in (124, 137):
            step["status"] = "timeout"
        else:
            step["status"] = "failed"
        result_file = work / "steps" / f"{name}.json"
        if result_file.exists():
            try:
                step["result"] = json.loads(result_file.read_text())
            except json.JSONDecodeError as exc:
                step["result"] = {"unreadable": str(exc)}
        if name == "pytest_cuda":
            step["result"] = _junit(work / "junit.xml")
        if step["status"] in ("failed", "timeout"):
            step["log_tail"] = _tail(work / "logs" / f"{name}.log")
        steps.append(step)
    return {"steps": steps}


def summarize(report: dict[str, Any]) -> dict[str, Any]:
    by = {s["name"]: s for s in report["steps"]}
    res = {name: (s.get("result") or {}) for name, s in by.items()}
    info = res.get("info", {})
    summary: dict[str, Any] = {
        "device": (info.get("gpu") or {}).get("name") or ("cpu" if info else None),
        "torch": info.get("torch"), "torch_cuda": info.get("torch_cuda"),
        "steps_ok": [n for n, s in by.items() if s["status"] == "ok"],
        "steps_failed": [f"{n} ({s['status']})" for n, s in by.items() if s["status"] in ("failed", "timeout")],
        "steps_skipped": [n for n, s in by.items() if s["status"] == "skipped"],
    }
    if "pytest_cuda" in res and res["pytest_cuda"]:
        p = res["pytest_cuda"]
        summary["cuda_tests"] = {k: p[k] for k in ("passed", "failures", "errors", "skipped")}
    speed = res.get("score_speed", {})
    if "shared_s_per_arch" in speed:
        summary["score_speed"] = {k: speed[k] for k in ("naive_s_per_arch", "shared_s_per_arch", "floor_s",
                                                        "floors_per_arch", "identical_scores", "archs")}
        summary["score_speed"]["target_floors_per_arch"] = TARGET_FLOORS_PER_ARCH
    agree = res.get("agreement", {})
    if "agreement" in agree:
        summary["agreement"] = {
            "archs": agree["archs"], "vetted_proxies_agree": agree["agree_vetted"],
            "disagreeing": agree["disagreeing"], "same_seed_bit_identical": agree["identical"],
            "n_differences": agree["n_differences"], "nondeterministic_alerts": agree["nondeterministic_alerts"],
            "max_rel_diff": {p: a["max_rel_diff"] for p, a in agree["agreement"].items()},
            "spearman": {p: a["spearman"] for p, a in agree["agreement"].items()},
        }
    rates = {}
    for name, r in res.items():
        if name.startswith("rate_") and r:
            if r.get("skipped"):
                rates[name] = {"skipped": r["skipped"]}
                continue
            rates[name] = {"proxies": r.get("proxies"), "runs": [
                {k: run.get(k) for k in ("workers", "archs", "archs_per_s_steady", "archs_per_s_wall",
                                         "extrapolated_whole_space_min", "errors", "skipped")}
                for run in r.get("runs", [])]}
    if rates:
        summary["rates"] = rates
        summary["rates_note"] = ("extrapolated_whole_space_min = 6,466 isomorphism classes / the steady rate of "
                                 f"a timed sample: an extrapolation, not a whole-space run; target <= "
                                 f"{TARGET_WHOLE_SPACE_MIN:.0f} min")
    return summary


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return str(x)


def markdown(report: dict[str, Any]) -> str:
    s = report["summary"]
    out = [f"# device_check ({report['mode']})", "",
           f"{report['created_at']} · device {_fmt(s.get('device'))} · torch {_fmt(s.get('torch'))} "
           f"(CUDA {_fmt(s.get('torch_cuda'))}) · {report['elapsed_s']:.0f} s of a {report['budget_s']} s budget · "
           f"**{'all steps ok' if report['ok'] else 'FAILURES'}**", ""]
    if report["mode"] != "gpu":
        out += ["> CPU dry run: these figures are not GPU figures.", ""]
    out += ["| step | status | seconds | limit |", "| --- | --- | --- | --- |"]
    for st in report["steps"]:
        status = f"skipped ({st['reason']})" if st.get("reason") else st["status"]
        out.append(f"| {st['name']} | {status} | {_fmt(st.get('seconds'))} | {_fmt(st.get('limit_s'))} |")
    if "cuda_tests" in s:
        out += ["", f"CUDA tests: {s['cuda_tests']}"]
    if "score_speed" in s:
        sp = s["score_speed"]
        out += ["", f"score_speed ({sp['archs']} archs): naive {_fmt(sp['naive_s_per_arch'])} s/arch, shared "
                    f"{_fmt(sp['shared_s_per_arch'])} s/arch, floor {_fmt(sp['floor_s'])} s → "
                    f"{_fmt(sp['floors_per_arch'])} floors per arch (target ≤ {TARGET_FLOORS_PER_ARCH:g}); "
                    f"identical scores: {sp['identical_scores']}"]
    if "agreement" in s:
        a = s["agreement"]
        out += ["", f"agreement on {a['archs']} classes: vetted proxies agree: {a['vetted_proxies_agree']} "
                    f"(disagreeing: {a['disagreeing'] or 'none'}); same seed bit-identical: "
                    f"{a['same_seed_bit_identical']} ({a['n_differences']} differences); ops without a "
                    f"deterministic kernel: {a['nondeterministic_alerts'] or 'none'}", "",
                "| proxy | max rel diff | Spearman |", "| --- | --- | --- |"]
        for p in sorted(a["max_rel_diff"]):
            out.append(f"| {p} | {_fmt(a['max_rel_diff'][p])} | {_fmt(a['spearman'][p], 4)} |")
    if "rates" in s:
        out += ["", f"Rates ({s['rates_note']}):", "",
                "| step | proxies | workers | archs timed | archs/s steady | archs/s wall | whole space, min "
                "(extrapolated) | error rows |",
                "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for name, r in s["rates"].items():
            label = RATE_LABELS.get(name, r.get("proxies"))
            if "skipped" in r:
                out.append(f"| {name} | {label} | – | – | – | – | skipped: {r['skipped']} | – |")
                continue
            for run in r["runs"]:
                if run.get("skipped"):
                    out.append(f"| {name} | {label} | {run['workers']} | – | – | – "
                               f"| skipped: {run['skipped']} | – |")
                    continue
                out.append(f"| {name} | {label} | {run['workers']} | {_fmt(run['archs'])} "
                           f"| {_fmt(run['archs_per_s_steady'])} | {_fmt(run['archs_per_s_wall'])} "
                           f"| {_fmt(run['extrapolated_whole_space_min'])} | {_fmt(run['errors'])} |")
    failed = [st for st in report["steps"] if st["status"] in ("failed", "timeout")]
    for st in failed:
        out += ["", f"## {st['name']} ({st['status']}, rc {st.get('rc')})", "", "```", st.get("log_tail", ""), "```"]
    return "\n".join(out) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--mode", default="gpu")
    parser.add_argument("--budget", type=int, default=0)
    parser.add_argument("--started", type=float, default=None, help="epoch seconds the check started")
    args = parser.parse_args()
    report = {"check": "benchmarks/device_check.sh", "mode": args.mode,
              "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "budget_s": args.budget,
              "elapsed_s": time.time() - args.started if args.started else 0.0, **collect(args.work)}
    report["ok"] = bool(report["steps"]) and all(st["status"] in ("ok", "skipped") for st in report["steps"])
    report["summary"] = summarize(report)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "device_check.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (args.out / "device_check.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
