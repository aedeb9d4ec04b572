"""Build and check ``.device/``: what the GPU machine needs to install and run proxybench offline.

The GPU machine (device kind ``nvidia-h200``) reaches no package index and runs Python 3.12;
this machine has PyPI and Python 3.11. So the wheels are downloaded here for the *target*
interpreter (``pip download --python-version 3.12 --only-binary=:all: --platform
manylinux_*_x86_64``) and travel with the working tree in the git-ignored folder ``.device/``
(64 MiB travel in all, the tree included). Only distributions that are not preinstalled there
(``benchmarks/device_preinstalled.txt``) are bundled; which ones that is follows from the
metadata, not from a hand-kept list: proxybench's own requirements (``pyproject.toml``, with
the ``ofa`` extra), then every ``Requires-Dist`` of every bundled wheel whose marker holds
on the target, recursively. Versions are the ones installed in this environment (the tested
ones) when they satisfy the requirement, else pip's newest match.

Layout::

    .device/wheels/*.whl                       # installed there with --no-index --no-deps --target
    .device/data/cifar10/train.parquet         # the first N training images, the shared layout
    .device/data/nb201/nats_bench_tss_200ep.csv
    .device/MANIFEST.json                      # what was bundled, sizes, the target

Usage (``benchmarks/device_bundle.sh`` runs ``build``)::

    python benchmarks/device_bundle.py build [--dest .device] [--images 2048] [--max-mib 60]
    python benchmarks/device_bundle.py check [--dest .device]      # exit 1 listing any problem

:func:`check_bundle` is what ``tests/test_device_bundle.py`` runs: the bundle must satisfy
every requirement that the target's preinstalled packages do not, with one version per
distribution and only wheels the target interpreter can install.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.parser import Parser
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.tags import Tag, compatible_tags, cpython_tags, sys_tags
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
PREINSTALLED = REPO / "benchmarks" / "device_preinstalled.txt"
DEFAULT_DEST = REPO / ".device"
#: The GPU machine's interpreter (KINDS.md: Python 3.12.3, /opt/torch/.venv/bin/python3).
TARGET_PYTHON = (3, 12)
TARGET_PYTHON_FULL = "3.12.3"
#: manylinux_2_N wheels it can run: Python 3.12.3 is Ubuntu 24.04's, glibc 2.39.
TARGET_GLIBC_MINOR = 39
#: Extras of proxybench the check needs besides its core requirements (OFA subnets).
EXTRAS = ("ofa",)


@dataclass(frozen=True)
class Target:
    """The interpreter a bundle is for: its marker environment and installable wheel tags."""

    name: str
    environment: Mapping[str, str]
    tags: frozenset[Tag]
    pip_args: tuple[str, ...]

    @classmethod
    def gpu_machine(cls) -> Target:
        platforms = [f"manylinux_2_{n}_x86_64" for n in range(TARGET_GLIBC_MINOR, 16, -1)]
        platforms += ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]
        tags = set(cpython_tags(TARGET_PYTHON, abis=["cp312", "abi3", "none"], platforms=platforms))
        tags |= set(compatible_tags(TARGET_PYTHON, "cp312", platforms=platforms))
        env = {
            "implementation_name": "cpython", "implementation_version": TARGET_PYTHON_FULL, "os_name": "posix",
            "platform_machine": "x86_64", "platform_python_implementation": "CPython", "platform_release": "",
            "platform_system": "Linux", "platform_version": "", "python_full_version": TARGET_PYTHON_FULL,
            "python_version": "3.12", "sys_platform": "linux",
        }
        pip = ["--python-version", "3.12", "--implementation", "cp"]
        for p in platforms:
            pip += ["--platform", p]
        return cls("cp312-manylinux_x86_64 (GPU machine)", env, frozenset(tags), tuple(pip))

    @classmethod
    def local(cls) -> Target:
        """This interpreter (the CPU test's fallback bundle)."""
        return cls(f"{sys.implementation.name}{sys.version_info[0]}{sys.version_info[1]} (this machine)",
                   dict(default_environment()), frozenset(sys_tags()), ())


def read_preinstalled(path: Path = PREINSTALLED) -> tuple[frozenset[str], dict[str, str]]:
    """(canonical names preinstalled on the target, {name: the preinstalled name that provides it})."""
    names: set[str] = set()
    provided: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if "=" in line:
            name, provider = (canonicalize_name(x.strip()) for x in line.split("=", 1))
            provided[name] = provider
        else:
            names.add(canonicalize_name(line))
    missing = {p for p in provided.values() if p not in names}
    if missing:
        raise ValueError(f"{path}: providers {sorted(missing)} are not listed as preinstalled")
    return frozenset(names), provided


def project_requirements(pyproject: Path = REPO / "pyproject.toml",
                         extras: Sequence[str] = EXTRAS) -> list[Requirement]:
    """proxybench's ``dependencies`` plus those of ``extras``."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the copy pip vendors
        from pip._vendor import tomli as tomllib

    project = tomllib.loads(pyproject.read_text())["project"]
    specs = list(project["dependencies"])
    for extra in extras:
        specs += project["optional-dependencies"][extra]
    return [Requirement(s) for s in specs]


def applies(req: Requirement, env: Mapping[str, str]) -> bool:
    """Whether ``req`` is needed on ``env`` (no extra requested: ``extra == ...`` markers are false)."""
    return req.marker is None or req.marker.evaluate({**env, "extra": ""})


@dataclass(frozen=True)
class WheelInfo:
    path: Path
    name: str
    version: Version
    requires: tuple[Requirement, ...]
    tags: frozenset[Tag]


def wheel_info(path: Path) -> WheelInfo:
    """Name, version, tags (from the file name) and ``Requires-Dist`` (from METADATA) of a wheel."""
    name, version, _, tags = parse_wheel_filename(path.name)
    with zipfile.ZipFile(path) as zf:
        meta_name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1)
        meta = Parser().parsestr(zf.read(meta_name).decode("utf-8"))
    requires = tuple(Requirement(r) for r in meta.get_all("Requires-Dist") or [])
    return WheelInfo(path, canonicalize_name(name), version, requires, frozenset(tags))


def check_bundle(wheel_dir: Path, roots: Iterable[Requirement], target: Target,
                 preinstalled: frozenset[str], provided: Mapping[str, str]) -> list[str]:
    """Every reason the wheels in ``wheel_dir`` cannot give ``roots`` on ``target`` (empty: they can).

    Checked: a wheel the target cannot install (tags), two versions of one distribution, and
    every requirement (the roots', and each wheel's ``Requires-Dist`` that applies on the
    target) that neither a wheel (of a satisfying version) nor a preinstalled package meets.
    A requirement met by a preinstalled package is not version-checked: the target's versions
    are not all known here.
    """
    wheels = [wheel_info(p) for p in sorted(Path(wheel_dir).glob("*.whl"))]
    problems = []
    by_name: dict[str, WheelInfo] = {}
    for w in wheels:
        if not w.tags & target.tags:
            problems.append(f"{w.path.name}: no tag installable on {target.name}")
        if w.name in by_name:
            problems.append(f"two versions of {w.name}: {by_name[w.name].version} and {w.version}")
        by_name[w.name] = w

    def need(req: Requirement, wanted_by: str) -> None:
        if not applies(req, target.environment):
            return
        name = canonicalize_name(req.name)
        if name in by_name:
            if req.specifier and not req.specifier.contains(by_name[name].version, prereleases=True):
                problems.append(f"{wanted_by} needs {req}, the bundle has {name} {by_name[name].version}")
        elif name not in preinstalled and name not in provided:
            problems.append(f"{wanted_by} needs {req}: neither bundled nor preinstalled on the target")

    for req in roots:
        need(req, "proxybench")
    for w in wheels:
        for req in w.requires:
            need(req, f"{w.name} {w.version}")
    return problems


@dataclass
class Resolution:
    wheels: list[WheelInfo] = field(default_factory=list)
    preinstalled: set[str] = field(default_factory=set)


def _local_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _pip_download(spec: str, dest: Path, target: Target) -> Path:
    """Download one wheel (no dependencies) for ``target``; its path."""
    before = set(dest.glob("*.whl"))
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(dest),
           *target.pip_args, spec]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"pip download {spec} failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")
    new = set(dest.glob("*.whl")) - before
    if not new:  # already there from an earlier call
        name = canonicalize_name(Requirement(spec).name)
        new = {p for p in dest.glob("*.whl") if canonicalize_name(parse_wheel_filename(p.name)[0]) == name}
    return sorted(new)[-1]


def resolve(roots: Iterable[Requirement], dest: Path, target: Target, preinstalled: frozenset[str],
            provided: Mapping[str, str], log=print) -> Resolution:
    """Download into ``dest`` every wheel the roots need on ``target`` beyond its preinstalled packages."""
    dest.mkdir(parents=True, exist_ok=True)
    out = Resolution()
    queue: list[tuple[Requirement, str]] = [(r, "proxybench") for r in roots]
    chosen: dict[str, WheelInfo] = {}
    while queue:
        req, wanted_by = queue.pop(0)
        if not applies(req, target.environment):
            continue
        name = canonicalize_name(req.name)
        if name in preinstalled or name in provided:
            out.preinstalled.add(provided.get(name, name))
            continue
        if name in chosen:
            if req.specifier and not req.specifier.contains(chosen[name].version, prereleases=True):
                raise RuntimeError(f"{wanted_by} needs {req} but {name} {chosen[name].version} was chosen")
            continue
        local = _local_version(req.name)
        spec = f"{req.name}=={local}" if local and req.specifier.contains(local, prereleases=True) else \
            f"{req.name}{req.specifier}"
        info = wheel_info(_pip_download(spec, dest, target))
        log(f"  {info.path.name}  ({info.path.stat().st_size / 2**20:.1f} MiB; for {wanted_by})")
        chosen[name] = info
        out.wheels.append(info)
        queue.extend((r, f"{name} {info.version}") for r in info.requires)
    return out


def slice_cifar(source: Path, dest: Path, images: int) -> int:
    """The first ``images`` rows of a CIFAR Parquet file, same columns and schema; rows written."""
    import pyarrow.parquet as pq

    table = pq.read_table(source)
    part = table.slice(0, min(images, table.num_rows))
    dest.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(part, dest)
    return part.num_rows


def shared_dir() -> Path:
    """The shared data folder: ``PROXYBENCH_SHARED_DIR``, else ``../shared`` beside the repository."""
    env = os.environ.get("PROXYBENCH_SHARED_DIR")
    found = Path(env) if env else REPO.parent / "shared"
    if not (found / "data" / "cifar10" / "train.parquet").is_file():
        raise SystemExit(f"no {found}/data/cifar10/train.parquet: set PROXYBENCH_SHARED_DIR")
    return found


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def tree_bytes() -> int:
    """What travels besides carried folders: tracked and untracked-not-ignored files (read-only git)."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True)
    if listed.returncode != 0:
        return 0
    total = 0
    for name in filter(None, listed.stdout.decode().split("\0")):
        p = REPO / name
        if p.is_file():
            total += p.stat().st_size
    return total


def build(dest: Path, images: int, max_mib: float, target: Target | None = None, with_data: bool = True) -> dict:
    """Fill ``dest`` (wheels, data, MANIFEST.json); the manifest. Raises SystemExit when over ``max_mib``."""
    target = target or Target.gpu_machine()
    preinstalled, provided = read_preinstalled()
    roots = project_requirements()
    wheels_dir = dest / "wheels"
    if wheels_dir.exists():
        shutil.rmtree(wheels_dir)
    with tempfile.TemporaryDirectory() as tmp:
        print(f"wheels for {target.name}:")
        res = resolve(roots, Path(tmp), target, preinstalled, provided)
        wheels_dir.mkdir(parents=True)
        for w in res.wheels:
            shutil.move(str(w.path), wheels_dir / w.path.name)
    problems = check_bundle(wheels_dir, roots, target, preinstalled, provided)
    if problems:
        raise SystemExit("bundle incomplete:\n  " + "\n  ".join(problems))
    data: dict[str, object] = {}
    if with_data:
        shared = shared_dir()
        n = slice_cifar(shared / "data" / "cifar10" / "train.parquet", dest / "data" / "cifar10" / "train.parquet",
                        images)
        truth = shared / "data" / "nb201" / "nats_bench_tss_200ep.csv"
        (dest / "data" / "nb201").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(truth, dest / "data" / "nb201" / truth.name)
        data = {"cifar10_train_images": n, "nb201_truth": truth.name}
    total = folder_bytes(dest)
    manifest = {
        "target": target.name,
        "created_at": datetime.now(timezone.utc).isoformat(),
        "wheels": [{"file": w.path.name, "name": w.name, "version": str(w.version),
                    "bytes": (wheels_dir / w.path.name).stat().st_size} for w in res.wheels],
        "preinstalled_used": sorted(res.preinstalled),
        "data": data,
        "bytes": total,
    }
    (dest / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    total = folder_bytes(dest)
    tree = tree_bytes()
    print(f"{dest}: {total / 2**20:.1f} MiB ({len(res.wheels)} wheels {folder_bytes(wheels_dir) / 2**20:.1f} MiB"
          + (f", data {folder_bytes(dest / 'data') / 2**20:.1f} MiB" if with_data else "") + ")")
    print(f"travels with the working tree ({tree / 2**20:.1f} MiB): {(total + tree) / 2**20:.1f} MiB of the 64 MiB")
    if total > max_mib * 2**20:
        raise SystemExit(f"{dest} is {total / 2**20:.1f} MiB, over the {max_mib} MiB budget")
    if total + tree > 64 * 2**20:
        raise SystemExit("the working tree and the bundle together exceed the 64 MiB that may travel")
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="download the wheels, slice the data, write MANIFEST.json")
    b.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    b.add_argument("--images", type=int, default=2048, help="CIFAR-10 training images to bundle (the first N)")
    b.add_argument("--max-mib", type=float, default=60.0)
    c = sub.add_parser("check", help="check the bundle's wheels against proxybench's requirements")
    c.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    args = parser.parse_args(argv)
    if args.command == "build":
        build(args.dest, args.images, args.max_mib)
        return 0
    preinstalled, provided = read_preinstalled()
    problems = check_bundle(args.dest / "wheels", project_requirements(), Target.gpu_machine(), preinstalled, provided)
    for p in problems:
        print(p)
    print("bundle complete" if not problems else f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
