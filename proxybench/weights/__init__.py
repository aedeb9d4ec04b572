"""Weight providers: how a network gets its weights before it is scored (init, short training, supernet).

Public API::

    from proxybench.weights import get_weights_provider

    provider = get_weights_provider("train:asam,epochs=1,rho=2")
    net = provider.prepare(net, arch, "nb201", "cifar10", data_dir=..., seed=0, device="cuda")
    provider.describe()   # the ``weights`` column; provider.settings: every resolved value
"""

from proxybench.weights.providers import (
    InitWeights,
    TrainedWeights,
    WeightsProvider,
    default_weights_cache_dir,
    get_weights_provider,
    list_weights_providers,
    parse_weights_spec,
    register_weights_provider,
)

__all__ = [
    "InitWeights",
    "TrainedWeights",
    "WeightsProvider",
    "default_weights_cache_dir",
    "get_weights_provider",
    "list_weights_providers",
    "parse_weights_spec",
    "register_weights_provider",
]
