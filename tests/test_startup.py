"""Commands that only read metadata start without importing torch (2-3 s of every start-up).

Each command runs in a fresh interpreter that calls the click group in-process and reports
which slow modules ended up in ``sys.modules``; the assertion is on the imports, not on wall
time (benchmarks/startup.py measures the seconds). ``--help``, ``--version``, ``proxies``
and ``presets`` import none of them (not even numpy or duckdb); the others may import what
they use, but never torch.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

_PROBE = """
import sys
from proxybench_cli.main import cli
try:
    cli.main(args={args!r}, prog_name="proxybench", standalone_mode=False)
finally:
    sys.stdout.flush()
    heavy = sorted(m for m in {heavy!r} if m in sys.modules)
    sys.stderr.write("HEAVY=" + ",".join(heavy) + "\\n")
"""

#: Slow imports (seconds for torch; tenths of a second each for the others on a busy CPU).
HEAVY = ("torch", "torchvision", "numpy", "duckdb", "pyarrow", "scipy")
TORCH = {"torch", "torchvision"}
ANY = set(HEAVY)


def _heavy_imports(args: list[str]) -> set[str]:
    done = subprocess.run([sys.executable, "-c", _PROBE.format(args=args, heavy=HEAVY)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return set(filter(None, done.stderr.strip().rsplit("HEAVY=", 1)[-1].split(",")))


@pytest.mark.parametrize(("args", "forbidden"), [
    (["--help"], ANY),
    (["--version"], ANY),
    (["proxies"], ANY),
    (["proxies", "syn*", "--format", "csv"], ANY),
    (["presets"], ANY),
    (["space"], TORCH),
    (["space", "nb201", "--sample", "3"], TORCH),
    (["space", "ofa", "--sample", "2"], TORCH),
    (["score", "--help"], TORCH),
    (["search", "--help"], TORCH),
    (["correlate", "--help"], TORCH),
    (["truth", "import", "--help"], TORCH),
    (["tables", "render", "--help"], TORCH),
    (["status", "{out}"], TORCH),
], ids=lambda a: " ".join(a) if isinstance(a, list) else "")
def test_metadata_commands_skip_slow_imports(args: list[str], forbidden: set[str], tmp_path: Path) -> None:
    (tmp_path / "scores").mkdir()
    assert _heavy_imports([a.format(out=tmp_path) for a in args]) & forbidden == set()


def test_public_api_is_still_reachable_from_the_package() -> None:
    import proxybench

    assert proxybench.get_proxy("synflow").name == "synflow"
    assert "nb201" in proxybench.list_spaces()
    assert callable(proxybench.score_architectures)
    assert {"get_space", "score_architectures"} <= set(dir(proxybench))
    with pytest.raises(AttributeError):
        proxybench.no_such_name  # noqa: B018


def test_catalog_matches_the_registry() -> None:
    """The torch-free catalog `proxybench proxies` reads is the registry's metadata."""
    from proxybench.catalog import proxy_infos, registry_infos

    assert proxy_infos() == registry_infos(), "the proxy catalog is stale: run python -m proxybench.catalog"
