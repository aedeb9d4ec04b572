"""Reference equivalence of the DARTS network: quark0/darts ``cnn/model.py`` beside proxybench's.

Builds the reference ``NetworkCIFAR`` for DARTS_V1/V2 at the paper's and NAS-Bench-301's sizes,
loads its state dict into :class:`proxybench.spaces.darts_net.DartsNetwork` with ``strict=True``
(same parameter names and shapes), and compares the parameter counts (``count_parameters_in_MB``'s
rule: names without 'auxiliary') and the outputs (logits and auxiliary logits, train and eval
mode) on one random batch. Exits 1 when anything differs.

The reference is not vendored: point ``--darts-cnn`` at the ``cnn/`` folder of a checkout
(``git clone https://github.com/quark0/darts``; checked at f276dd3). It needs torchvision
(its ``utils.py`` imports it).

Example:
    python benchmarks/darts_reference.py --darts-cnn ~/src/darts/cnn
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys

import torch

from proxybench.spaces.darts import CONCAT, Genotype
from proxybench.spaces.darts_net import DartsNetwork

CASES = (("DARTS_V2", 36, 20, True), ("DARTS_V1", 36, 20, True), ("DARTS_V2", 32, 8, False))


def _count(net: torch.nn.Module) -> int:
    return sum(p.numel() for name, p in net.named_parameters() if "auxiliary" not in name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--darts-cnn", required=True, help="the cnn/ folder of a quark0/darts checkout")
    parser.add_argument("--batch", type=int, default=4)
    args = parser.parse_args()
    sys.path.insert(0, args.darts_cnn)
    import genotypes  # type: ignore[import-not-found]  # the reference's modules
    import model  # type: ignore[import-not-found]

    failed = False
    for name, channels, layers, auxiliary in CASES:
        g = getattr(genotypes, name)
        ours_genotype = Genotype(tuple(map(tuple, g.normal)), CONCAT, tuple(map(tuple, g.reduce)), CONCAT)
        torch.manual_seed(0)
        with contextlib.redirect_stdout(io.StringIO()):  # the reference's Cell prints its channels
            ref = model.NetworkCIFAR(channels, 10, layers, auxiliary, g)
        ref.drop_path_prob = 0.0
        ours = DartsNetwork(ours_genotype, 10, channels=channels, layers=layers, auxiliary=auxiliary)
        ours.load_state_dict(ref.state_dict(), strict=True)
        x = torch.randn(args.batch, 3, 32, 32)
        same = {}
        for train in (False, True):
            ref.train(train)
            ours.train(train)
            with torch.no_grad():
                r_logits, r_aux = ref(x)
                o_logits, o_aux = ours.forward_with_aux(x)
            aux_same = (r_aux is None and o_aux is None) or (r_aux is not None and o_aux is not None
                                                              and torch.equal(r_aux, o_aux))
            same["train" if train else "eval"] = bool(torch.equal(r_logits, o_logits) and aux_same)
        counts = (_count(ref), _count(ours))
        ok = counts[0] == counts[1] and all(same.values())
        failed |= not ok
        print(f"{name} C={channels} layers={layers} auxiliary={auxiliary}: params reference {counts[0]:,} "
              f"proxybench {counts[1]:,}; bit-identical outputs eval={same['eval']} train={same['train']}"
              f" -> {'ok' if ok else 'DIFFERENT'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
