"""Helpers shared by the proxy families: which layers a proxy scores, and how it sums them.

Both references (zero-cost-nas ``foresight/pruners/p_utils.py`` and NASLib
``naslib/predictors/utils/pruners/p_utils.py``) score exactly the ``nn.Conv2d`` and
``nn.Linear`` layers ("prunable" layers, named after SNIP's pruning masks); BatchNorm and
biases are never scored. Keeping the selection in one place keeps every family consistent.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

__all__ = ["PRUNABLE_TYPES", "prunable_layers", "sum_layer_values"]

#: Layer types whose ``weight`` a per-layer proxy scores.
PRUNABLE_TYPES: tuple[type[nn.Module], ...] = (nn.Conv2d, nn.Linear)


def prunable_layers(net: nn.Module) -> list[nn.Module]:
    """Every ``nn.Conv2d`` and ``nn.Linear`` of ``net``, in ``net.modules()`` order.

    A module shared at two places appears once (``modules()`` deduplicates).
    """
    return [m for m in net.modules() if isinstance(m, PRUNABLE_TYPES)]


def sum_layer_values(values: Iterable[torch.Tensor | float]) -> float:
    """Sum per-layer values (tensors of any shape are summed over their elements) to one float.

    The sum is accumulated in float64 so the result does not depend on the layers' dtype
    beyond their own precision; an empty iterable gives ``0.0``.
    """
    total = torch.zeros((), dtype=torch.float64)
    for v in values:
        if isinstance(v, torch.Tensor):
            total = total + v.detach().to(device="cpu", dtype=torch.float64).sum()
        else:
            total = total + float(v)
    return float(total)
