"""Do two scoring runs of the same architectures agree? CPU vs CUDA tolerances, and bit identity.

A CUDA score is the CPU computation with other kernels: the same network (built on the CPU
under the run's seed, then moved), the same batch, but convolutions, reductions and matmuls
that add in other orders. How far the two may drift apart depends on the proxy's arithmetic,
so each proxy of the zero-cost suite has a :class:`Tolerance` here with the reason for its
size; ``tests/test_cuda.py`` and ``benchmarks/device_check.sh`` judge a GPU by
:func:`compare_rows`. Two runs on the same GPU with the same seed must be identical bit for
bit (:func:`identical_rows`), whatever the tolerance.

A proxy without an entry (the modern proxies, new ones) is compared with
:data:`UNVETTED` and reported, but marked ``vetted=False``: nobody has justified a tolerance
for it yet, so its verdict informs rather than gates.
"""

from __future__ import annotations

import math
import statistics
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["CUDA_VS_CPU", "RANK_MIN", "UNVETTED", "ProxyAgreement", "Tolerance", "compare_rows", "identical_rows"]

#: Rank agreement (Spearman) across architectures that every proxy must reach (issue 19).
RANK_MIN = 0.99


@dataclass(frozen=True)
class Tolerance:
    """How far a proxy's score on one device may be from its score on the other.

    Attributes:
        rtol: Allowed ``|a - b|`` as a fraction of the scale.
        scale: ``pair``: the larger ``|score|`` of the two; ``mixed``: that, but at least the
            median ``|score|`` of the reference run over the sample (for signed sums that can
            cancel to near zero, where an error relative to the value itself is unbounded).
        same_draws: False for a proxy that draws random numbers on the network's device
            (CPU and CUDA generators give different numbers for the same seed); then the two
            runs are two different draws and ``rtol`` is the spread between seeds.
        vetted: A justified tolerance (False: :data:`UNVETTED`, reported only).
        why: The justification.
    """

    rtol: float
    scale: Literal["pair", "mixed"] = "pair"
    same_draws: bool = True
    vetted: bool = True
    why: str = ""


# The float32 proxies' tolerances rest on benchmarks/fp32_rounding.py: the same network and
# batch scored in float32 and in float64 on the CPU, 48 seeded NB201 isomorphism classes,
# batch 64 ("measured" below: the largest relative difference over the 48). A float32 score
# on the CPU and one on CUDA each carry a rounding error of about that size, so they differ by
# up to about twice it; each tolerance is about 3x the measured maximum (a larger sample has
# a longer tail). BatchNorm on batch statistics at initialisation is what makes these
# proxies far less precise than float32's 6e-8: a channel of small variance turns rounding
# into a large relative change of 1/sigma. The ranking survives that rounding: Spearman between
# the float32 and float64 scores over the 48 was >= 0.9986 for every proxy (epe_nas lowest).
_F32 = "float32 forward and backward; CPU measured {} (float32 vs float64, 48 classes), tolerance ~3x"

#: Tolerances for CUDA (TF32 off, see :mod:`proxybench.device`) against the CPU.
CUDA_VS_CPU: Mapping[str, Tolerance] = {
    "params": Tolerance(0.0, why="counts parameter elements: no device arithmetic at all"),
    "flops": Tolerance(0.0, why="counts from tensor shapes: no device arithmetic at all"),
    "l2_norm": Tolerance(1e-5, why="float32 norms of the identical weights (built on the CPU, copied): only the "
                                   "reduction order differs; measured 7.7e-8"),
    "grad_norm": Tolerance(1e-2, why=_F32.format("1.8e-3")),
    "snip": Tolerance(1e-2, why=_F32.format("3.2e-3")),
    "fisher": Tolerance(1e-2, why=_F32.format("3.5e-3") + "; squares of per-sample sums"),
    "plain": Tolerance(5e-2, scale="mixed", why=_F32.format("1.5e-2 (mixed scale)") + "; a signed sum that "
                       "cancels (up to 0.32 relative to its own near-zero value), so judged against at least the "
                       "sample's median |score|"),
    "grasp": Tolerance(1.0, why=_F32.format("0.31") + "; a Hessian-vector product of signed terms that cancel: "
                       "float32 grasp is only good to tens of percent on some architectures, so the per-arch "
                       "check is loose and the rank agreement carries the weight"),
    "synflow": Tolerance(1e-9, why="float64 throughout (eps 1.1e-16) on one all-ones input; products over "
                                   "~20 layers leave ~1e-13"),
    "synflow_bn": Tolerance(1e-9, why="float64 throughout, as synflow"),
    "jacov": Tolerance(2e-4, why="float32 input Jacobian, then float64 correlations and eigenvalues; CPU measured "
                                 "4.0e-5 (float32 vs float64, 48 classes), tolerance ~5x"),
    "epe_nas": Tolerance(3e-2, why=_F32.format("9.5e-3") + " (the input Jacobian; logs of |correlation| + 1e-5 "
                                                          "magnify the small correlations)"),
    "nwot": Tolerance(1e-5, why="the kernel counts agreeing ReLU codes exactly, except where a pre-activation "
                                "within rounding of 0 flips its sign; measured 7.3e-8 (float32 vs float64)"),
    "zen": Tolerance(0.15, same_draws=False,
                     why="draws its Gaussian weights and inputs on the network's device: CUDA's Philox "
                         "generator gives other numbers than the CPU's for the same seed, so CPU vs CUDA is "
                         "two draws; measured on the CPU (40 NB201 archs, seeds 0 vs 1): median relative "
                         "difference 0.7%, max 7%, Spearman 0.997"),
}

#: What a proxy without a justified tolerance is compared with (and reported, not gated, by).
UNVETTED = Tolerance(1e-3, vetted=False, why="no tolerance justified for this proxy yet (float32 default)")


@dataclass
class ProxyAgreement:
    """One proxy's agreement between a reference run and another run of the same architectures."""

    proxy: str
    n: int
    compared: int
    status_mismatches: list[str] = field(default_factory=list)
    max_rel_diff: float | None = None
    worst_arch: str | None = None
    spearman: float | None = None
    tolerance: Tolerance = UNVETTED

    @property
    def within_tolerance(self) -> bool:
        return self.max_rel_diff is None or self.max_rel_diff <= self.tolerance.rtol

    @property
    def rank_ok(self) -> bool:
        """Spearman >= :data:`RANK_MIN`, or too few finite pairs (< 3) to rank."""
        return self.spearman is None or self.spearman >= RANK_MIN

    @property
    def ok(self) -> bool:
        return not self.status_mismatches and self.within_tolerance and self.rank_ok

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(within_tolerance=self.within_tolerance, rank_ok=self.rank_ok, ok=self.ok)
        return d


def _by_key(rows: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], Mapping[str, Any]]:
    return {(r["arch"], r["proxy"]): r for r in rows}


def _spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    if len(a) < 3:
        return None
    if len(set(a)) == 1 and len(set(b)) == 1:
        return 1.0
    from scipy.stats import spearmanr

    value = float(spearmanr(a, b).statistic)
    return None if math.isnan(value) else value


def compare_rows(
    reference: Iterable[Mapping[str, Any]],
    other: Iterable[Mapping[str, Any]],
    tolerances: Mapping[str, Tolerance] = CUDA_VS_CPU,
) -> dict[str, ProxyAgreement]:
    """Per proxy: status mismatches, the largest scaled difference and Spearman across archs.

    Rows are ``scores`` rows (``arch``, ``proxy``, ``score``, ``status``). Only pairs that are
    ``ok`` in both runs are compared numerically; any status difference is a mismatch (a row
    missing from one run counts as one, with status ``missing``).
    """
    ref, oth = _by_key(reference), _by_key(other)
    result: dict[str, ProxyAgreement] = {}
    for proxy in sorted({p for _, p in ref} | {p for _, p in oth}):
        keys = sorted(k for k in set(ref) | set(oth) if k[1] == proxy)
        tol = tolerances.get(proxy, UNVETTED)
        entry = ProxyAgreement(proxy=proxy, n=len(keys), compared=0, tolerance=tol)
        pairs: list[tuple[str, float, float]] = []
        for key in keys:
            a, b = ref.get(key), oth.get(key)
            sa, sb = (a or {}).get("status", "missing"), (b or {}).get("status", "missing")
            if sa != sb:
                entry.status_mismatches.append(f"{key[0]}: {sa} vs {sb}")
            elif sa == "ok":
                pairs.append((key[0], float(a["score"]), float(b["score"])))  # type: ignore[index]
        entry.compared = len(pairs)
        if pairs:
            sample_scale = statistics.median(abs(x) for _, x, _ in pairs)
            worst = (-1.0, None)
            for arch, x, y in pairs:
                scale = max(abs(x), abs(y), sample_scale if tol.scale == "mixed" else 0.0)
                rel = 0.0 if x == y else abs(x - y) / scale if scale > 0 else math.inf
                if rel > worst[0]:
                    worst = (rel, arch)
            entry.max_rel_diff, entry.worst_arch = worst
            entry.spearman = _spearman([x for _, x, _ in pairs], [y for _, _, y in pairs])
        result[proxy] = entry
    return result


def _bits(value: Any) -> bytes | None:
    """The score's float64 bit pattern; every NaN (error rows) is one value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return struct.pack("<d", float(value))


def identical_rows(a: Iterable[Mapping[str, Any]], b: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every difference between two runs that should be bit-identical (empty: identical).

    Compared per (arch, proxy): presence, status and the exact bit pattern of the score.
    """
    ra, rb = _by_key(a), _by_key(b)
    problems = [f"{k[0]} {k[1]}: only in the {'first' if k in ra else 'second'} run" for k in sorted(set(ra) ^ set(rb))]
    for key in sorted(set(ra) & set(rb)):
        x, y = ra[key], rb[key]
        if x["status"] != y["status"]:
            problems.append(f"{key[0]} {key[1]}: status {x['status']} vs {y['status']}")
        elif _bits(x["score"]) != _bits(y["score"]):
            problems.append(f"{key[0]} {key[1]}: {x['score']!r} vs {y['score']!r}")
    return problems
