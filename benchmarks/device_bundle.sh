#!/usr/bin/env bash
# Build .device/ HERE (where pip reaches PyPI) for benchmarks/device_check.sh on the GPU machine:
# the cp312 manylinux wheels proxybench needs beyond that machine's preinstalled packages, the
# first DEVICE_BUNDLE_IMAGES CIFAR-10 training images and the NB201 truth CSV. Prints the size
# and fails over DEVICE_BUNDLE_MAX_MIB. See benchmarks/device_bundle.py.
set -euo pipefail
cd "$(dirname "$0")/.."
py="${PYTHON:-}"
if [ -z "$py" ]; then
    if [ -x .venv/bin/python ]; then py=.venv/bin/python; else py=python3; fi
fi
"$py" benchmarks/device_bundle.py build --dest .device \
    --images "${DEVICE_BUNDLE_IMAGES:-2048}" --max-mib "${DEVICE_BUNDLE_MAX_MIB:-60}"
"$py" benchmarks/device_bundle.py check --dest .device
du -sh .device
