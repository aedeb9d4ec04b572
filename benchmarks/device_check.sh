#!/usr/bin/env bash
# The prepared GPU check of issue 19: ONE command on the GPU machine, through the device tool:
#
#     run(command="bash benchmarks/device_check.sh", carry=[".device"], timeout_s=500)
#
# after `bash benchmarks/device_bundle.sh` has filled .device/ here (wheels, a CIFAR-10 slice,
# the NB201 truth CSV). Steps, each under its own timeout and all within DEVICE_CHECK_BUDGET_S
# (default 450 s; a step that no longer fits is skipped and recorded as such):
#
#   install       the bundle's wheels and proxybench (from this tree), offline, into /tmp/site
#   nvidia_smi    the GPU as the driver sees it
#   info          python, torch, CUDA, the GPU, the bundled packages, the registered suites
#   pytest_cuda   pytest -m cuda tests/test_cuda.py (suite runs, CPU agreement, bit identity)
#   agreement     CPU vs CUDA on 48 seeded isomorphism classes; two CUDA runs bit-identical
#   score_speed   naive loop / shared passes / floor (one fwd+bwd) on CUDA, 20 archs
#   rate_<suite>  archs/s for 1 and 4 workers sharing the GPU, timed on a sample of 200
#                 classes, EXTRAPOLATED to the 6,466 classes of the space (DEVICE_CHECK_SUITES,
#                 default "zero-cost modern"; a suite with no registered proxy is recorded as skipped)
#   rate_nodet    zero-cost, 1 worker, with PROXYBENCH_CUDA_DETERMINISM=off: what determinism costs
#
# Whatever fails, it writes $OUT/device_check.json and $OUT/device_check.md (+ device_check.log,
# every step's output) and exits 1 if a step failed or timed out.
#
# Switches:
#   DEVICE_CHECK_CPU=1        CPU dry run (any machine): --device cpu, tiny sizes, the install step
#                             as a pip --dry-run for cp312 plus a real install of proxybench only
#   DEVICE_CHECK_STEPS=a,b    run only these steps (a rerun of what failed; install always runs:
#                             a fresh machine has nothing installed)
#   DEVICE_CHECK_SUITES=...   proxy selections to time (space-separated)
#   DEVICE_CHECK_AGREE_PROXIES=...  the agreement step's selection (default zero-cost)
#   DEVICE_CHECK_BUDGET_S=N   total seconds (default 450: 7.5 min, inside the 8 of issue 19)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
repo=$PWD
started=$(date +%s)
budget=${DEVICE_CHECK_BUDGET_S:-450}
deadline=$((started + budget))
cpu_mode=${DEVICE_CHECK_CPU:-0}
only=${DEVICE_CHECK_STEPS:-}
suites=${DEVICE_CHECK_SUITES:-zero-cost modern}
out=${OUT:-${TMPDIR:-/tmp}/device_check_out}
py=${PYTHON:-python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/device_check.XXXXXX")
mkdir -p "$out" "$work/steps" "$work/logs"
[ "${DEVICE_CHECK_KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT  # everything worth keeping is in $out
log="$out/device_check.log"
: >"$log"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
data="$repo/.device/data"
export PROXYBENCH_SHARED_DIR="$repo/.device" PROXYBENCH_REQUIRE_SHARED=1 PROXYBENCH_DATA_DIR="$data"

if [ "$cpu_mode" = 1 ]; then
    mode=cpu-dry-run device=cpu site="$work/site"
    speed_n=2 agree_n=3 cpu_workers=2 rate_sample=4 rate_workers=1,2 rate_budget=40 batch=(--batch-size 16)
else
    mode=gpu device=cuda site=/tmp/site
    speed_n=20 agree_n=48 cpu_workers=8 rate_sample=200 rate_workers=1,4 rate_budget=60 batch=()
fi

say() { echo "$*" | tee -a "$log"; }

want() {  # is step $1 selected? (install always is: every later step needs it on a fresh machine)
    [ -z "$only" ] || [ "$1" = install ] && return 0
    case ",$only," in *",$1,"*) return 0 ;; *) return 1 ;; esac
}

left() { echo $((deadline - $(date +%s) - 20)); }  # 20 s are kept for the report

record() {  # name rc seconds limit [skipped-reason]
    if [ -n "${5:-}" ]; then
        printf '{"name": "%s", "skipped": true, "reason": "%s"}\n' "$1" "$5" >>"$work/steps.jsonl"
    else
        printf '{"name": "%s", "rc": %d, "seconds": %s, "limit_s": %d}\n' "$1" "$2" "$3" "$4" >>"$work/steps.jsonl"
    fi
}

step() {  # name limit_s command... : run it under timeout, tee its output, record how it went
    local name=$1 limit=$2
    shift 2
    want "$name" || return 0
    local room
    room=$(left)
    if [ "$room" -lt 15 ]; then
        say "=== [$name] skipped: ${room}s of the budget left"
        record "$name" 0 0 0 "budget: ${room}s left"
        return 0
    fi
    [ "$limit" -gt "$room" ] && limit=$room
    say "=== [$name] limit ${limit}s: $*"
    local t0 t1 rc
    t0=$(date +%s.%N)
    timeout -k 10 "$limit" "$@" 2>&1 | tee "$work/logs/$name.log" | tee -a "$log"
    rc=${PIPESTATUS[0]}
    t1=$(date +%s.%N)
    local secs
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    say "=== [$name] rc=$rc in ${secs}s"
    record "$name" "$rc" "$secs" "$limit"
}

skip() {  # name reason
    want "$1" || return 0
    say "=== [$1] skipped: $2"
    record "$1" 0 0 0 "$2"
}

say "device_check ($mode) in $repo, budget ${budget}s, out $out, work $work"
if [ ! -d "$repo/.device/wheels" ] || [ ! -f "$data/cifar10/train.parquet" ]; then
    say "no .device/ bundle here: run benchmarks/device_bundle.sh first (and carry .device)"
fi

# ----------------------------------------------------------------------------- install
if [ "$mode" = gpu ]; then
    step install 120 bash benchmarks/device_install.sh "$site"
else
    step install 120 bash -c "DEVICE_INSTALL_DRY_RUN=1 bash benchmarks/device_install.sh '$work/dry' \
        && DEVICE_INSTALL_WHEELS=0 bash benchmarks/device_install.sh '$site'"
fi
if [ -f "$site/proxybench/__init__.py" ]; then
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
    say "PYTHONPATH=$PYTHONPATH (proxybench installed from this tree)"
else  # the wheels (if any) still come from $site; proxybench from the tree itself
    export PYTHONPATH="$site:$repo${PYTHONPATH:+:$PYTHONPATH}"
    say "PYTHONPATH=$PYTHONPATH (proxybench NOT installed: using the source tree)"
fi

# ----------------------------------------------------------------------------- the machine
if [ "$mode" = gpu ]; then
    step nvidia_smi 20 nvidia-smi
else
    skip nvidia_smi "CPU dry run"
fi
step info 60 "$py" benchmarks/device_steps.py info --json "$work/steps/info.json" --device "$device"

# ----------------------------------------------------------------------------- correctness
[ "$mode" = gpu ] && export PROXYBENCH_REQUIRE_CUDA=1  # on the GPU machine a skipped CUDA test is a failure
step pytest_cuda 150 "$py" -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py --junitxml="$work/junit.xml"
step agreement 120 "$py" benchmarks/device_steps.py agreement --json "$work/steps/agreement.json" \
    --device "$device" --data-dir "$data" --n "$agree_n" --cpu-workers "$cpu_workers" \
    --proxies "${DEVICE_CHECK_AGREE_PROXIES:-zero-cost}" "${batch[@]}"

# ----------------------------------------------------------------------------- speed
step score_speed 90 "$py" benchmarks/score_speed.py --data-dir "$data" --device "$device" --n "$speed_n" \
    --json "$work/steps/score_speed.json" "${batch[@]}"

rate_step() {  # name budget_s extra-args... : a rate step whose own budget fits what is left
    local name=$1 want_budget=$2
    shift 2
    want "$name" || return 0
    local room b
    room=$(left)
    b=$want_budget
    [ $((room - 40)) -lt "$b" ] && b=$((room - 40))
    if [ "$b" -lt 15 ]; then
        skip "$name" "budget: ${room}s left"
        return 0
    fi
    step "$name" $((b + 40)) "$py" benchmarks/device_steps.py rate --json "$work/steps/$name.json" \
        --device "$device" --data-dir "$data" --budget "$b" "$@"
}

for suite in $suites; do
    rate_step "rate_${suite//[^a-zA-Z0-9]/_}" "$rate_budget" --proxies "$suite" --sample "$rate_sample" \
        --workers "$rate_workers" "${batch[@]}"
done
if [ "$mode" = gpu ]; then
    PROXYBENCH_CUDA_DETERMINISM=off rate_step rate_nodet 25 --proxies zero-cost --sample "$rate_sample" \
        --workers 1 "${batch[@]}"
else
    skip rate_nodet "CPU dry run: no CUDA determinism to switch off"
fi

# ----------------------------------------------------------------------------- report
say "=== report"
if ! "$py" benchmarks/device_report.py --work "$work" --out "$out" --mode "$mode" --budget "$budget" \
    --started "$started" 2>&1 | tee -a "$log"; then
    printf '{"check": "benchmarks/device_check.sh", "mode": "%s", "ok": false, "error": "device_report.py failed; see device_check.log"}\n' \
        "$mode" >"$out/device_check.json"
fi
[ -f "$out/device_check.json" ] || printf '{"ok": false, "error": "no report"}\n' >"$out/device_check.json"
say "wrote $out/device_check.json, $out/device_check.md, $log in $(($(date +%s) - started))s"
"$py" -c 'import json, sys; sys.exit(0 if json.load(open(sys.argv[1])).get("ok") else 1)' "$out/device_check.json"
