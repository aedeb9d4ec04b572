#!/usr/bin/env bash
# Install the .device/ bundle and proxybench without any package index (the GPU machine has none).
#
#   bash benchmarks/device_install.sh SITE      # wheels + proxybench into SITE; then PYTHONPATH=SITE
#
# The wheels (.device/wheels, built here by benchmarks/device_bundle.sh) go in with
# --no-index --no-deps --target, as the device README describes; proxybench itself is built from
# the working tree that travelled, with the preinstalled setuptools (--no-build-isolation), so it
# is never a stale copy. Switches:
#   DEVICE_INSTALL_DRY_RUN=1   pip --dry-run for the GPU machine's interpreter (cp312 manylinux),
#                              from any machine: resolves the very files this script installs
#                              (tests/test_device_bundle.py runs it before any GPU time is spent)
#   DEVICE_INSTALL_TARGET=local  with DRY_RUN: for this interpreter (a bundle made for it)
#   DEVICE_INSTALL_WHEELS=0    skip the wheels (a CPU dry run, whose interpreter has them already)
# pip reads no configuration file (PIP_CONFIG_FILE=/dev/null), so a local index or find-links
# cannot make it pass here and fail there.
set -euo pipefail
cd "$(dirname "$0")/.."
site=${1:?usage: benchmarks/device_install.sh SITE}
py=${PYTHON:-python3}
bundle=${DEVICE_BUNDLE:-.device}
export PIP_CONFIG_FILE=/dev/null PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
unset PIP_FIND_LINKS PIP_EXTRA_INDEX_URL PIP_INDEX_URL PIP_CONSTRAINT 2>/dev/null || true
shopt -s nullglob
wheels=("$bundle"/wheels/*.whl)
if [ "${DEVICE_INSTALL_WHEELS:-1}" = 1 ] && [ ${#wheels[@]} -eq 0 ]; then
    echo "no wheels in $bundle/wheels: run benchmarks/device_bundle.sh where pip reaches PyPI" >&2
    exit 2
fi
common=(--no-index --no-deps --target "$site")
if [ "${DEVICE_INSTALL_DRY_RUN:-0}" = 1 ]; then
    if [ "${DEVICE_INSTALL_TARGET:-gpu}" = local ]; then  # a bundle made for this interpreter (the test's)
        target=(--only-binary=:all:)
    else
        target=(--python-version 3.12 --implementation cp --only-binary=:all:)
        for n in $(seq 39 -1 17); do target+=(--platform "manylinux_2_${n}_x86_64"); done
        target+=(--platform manylinux2014_x86_64 --platform manylinux1_x86_64)
    fi
    echo "dry run: ${#wheels[@]} wheels for ${DEVICE_INSTALL_TARGET:-gpu} (cp312 manylinux x86_64 unless local)"
    "$py" -m pip install --dry-run -q "${common[@]}" "${target[@]}" --report "$site.wheels.json" "${wheels[@]}"
    echo "dry run: proxybench from the working tree (no build isolation)"
    "$py" -m pip install --dry-run -q "${common[@]}" --no-build-isolation --report "$site.proxybench.json" .
    exit 0
fi
mkdir -p "$site"
if [ "${DEVICE_INSTALL_WHEELS:-1}" = 1 ]; then
    echo "installing ${#wheels[@]} wheels into $site"
    "$py" -m pip install -q "${common[@]}" --no-compile --upgrade "${wheels[@]}"
fi
echo "installing proxybench from the working tree into $site"
"$py" -m pip install -q "${common[@]}" --no-compile --upgrade --no-build-isolation .
