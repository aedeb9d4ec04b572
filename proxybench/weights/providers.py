"""Weight providers: where a network's weights come from before a proxy scores it.

A provider is chosen by a short spec string, parsed by :func:`get_weights_provider`:

* ``init`` -- the network as built (the space's initialisation under the run's seed).
* ``train[:key=value,...]`` -- a short training run (:func:`proxybench.train.train`), e.g.
  ``train:epochs=1,optimizer=asam,rho=2,lr=0.1,batch_size=128`` (FlatNAS's candidate
  fine-tuning). A bare ``sgd``, ``sam`` or ``asam`` item names the optimizer:
  ``train:asam,epochs=1``.
* ``supernet:PATH[,recalibrate=K,...]`` -- weights inherited from a one-shot NB201 supernet
  checkpoint, BN recalibrated (:mod:`proxybench.weights.supernet`).

Every provider has ``name``, ``settings`` (every resolved value that changes the weights,
recorded with each score) and :meth:`~WeightsProvider.describe` (the ``weights`` column; for
``train`` it is itself a spec that gives the same provider back).

The ``train`` provider caches each trained network on disk, keyed by a SHA-256 of the space,
architecture, dataset, number of classes, seed, device type and every setting, under
``cache_dir`` (default ``~/.cache/proxybench/weights``, or ``$PROXYBENCH_CACHE_DIR/weights``),
so scoring several proxies on the same trained network trains it once. Files are written to
a temporary name and renamed, so a killed run never leaves a half-written checkpoint.
The key assumes the network handed to :meth:`~TrainedWeights.prepare` was built by the
space under the same seed (what the scoring engine does).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from proxybench._naming import suggest
from proxybench.batch import ProxyBatch, input_resolution
from proxybench.errors import InvalidSettingError

__all__ = [
    "WeightsProvider",
    "InitWeights",
    "TrainedWeights",
    "get_weights_provider",
    "list_weights_providers",
    "register_weights_provider",
    "parse_weights_spec",
    "default_weights_cache_dir",
]

_CACHE_FORMAT = 1


def default_weights_cache_dir() -> Path:
    """``$PROXYBENCH_CACHE_DIR/weights``, else ``~/.cache/proxybench/weights``."""
    from proxybench.data.sources import default_cache_dir

    return default_cache_dir() / "weights"


class WeightsProvider(ABC):
    """How a network gets its weights before it is scored.

    Attributes:
        name: Provider name (``init``, ``train``).
        settings: Every resolved value that changes the weights.
    """

    name: str = ""
    settings: dict[str, Any]

    def describe(self) -> str:
        """The ``weights`` column value."""
        return self.name

    @abstractmethod
    def prepare(self, net: nn.Module, arch: str, space: Any, dataset: str, data_dir: str | Path | None = None,
                seed: int = 0, device: torch.device | str | None = None) -> nn.Module:
        """Return ``net`` (possibly the same object) holding this provider's weights."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()!r})"


_PROVIDERS: dict[str, Callable[..., WeightsProvider]] = {}


def register_weights_provider(name: str) -> Callable[[Callable[..., WeightsProvider]], Callable[..., WeightsProvider]]:
    """Register a factory called with the parsed ``key=value`` settings of a spec.

    Raises:
        ValueError: ``name`` is registered twice.
    """

    def register(factory: Callable[..., WeightsProvider]) -> Callable[..., WeightsProvider]:
        if name in _PROVIDERS:
            raise ValueError(f"weights provider '{name}' is registered twice")
        _PROVIDERS[name] = factory
        return factory

    return register


def list_weights_providers() -> list[str]:
    """Registered provider names."""
    return sorted(_PROVIDERS)


def _value(text: str) -> Any:
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text.strip()


def parse_weights_spec(spec: str) -> tuple[str, str, dict[str, Any]]:
    """Split ``name[:rest]`` into the name, the raw rest and its ``key=value`` items.

    Items without ``=`` are collected under the key ``""`` (a list), for providers that take
    a bare word (``train:asam``) or a path (``supernet:PATH``).

    Raises:
        InvalidSettingError: An empty spec, key or duplicate key.
    """
    text = str(spec).strip()
    if not text:
        raise InvalidSettingError("empty weights spec; use 'init' or 'train[:key=value,...]'")
    name, _, rest = text.partition(":")
    items: dict[str, Any] = {}
    bare: list[str] = []
    for part in filter(None, (p.strip() for p in rest.split(","))):
        if "=" not in part:
            bare.append(part)
            continue
        key, _, raw = part.partition("=")
        key = key.strip()
        if not key:
            raise InvalidSettingError(f"weights spec '{spec}': empty key in '{part}'")
        if key in items:
            raise InvalidSettingError(f"weights spec '{spec}': '{key}' is given twice")
        items[key] = _value(raw)
    if bare:
        items[""] = bare
    return name.strip(), rest, items


def get_weights_provider(spec: str | WeightsProvider | None, **overrides: Any) -> WeightsProvider:
    """The provider a spec string names.

    Args:
        spec: ``init``, ``train[:key=value,...]``, or a provider (returned as is). ``None``
            means ``init``.
        **overrides: Keyword settings applied after the spec's (e.g. ``cache_dir``); ``None``
            values are ignored, so unset command-line options keep the defaults.

    Raises:
        InvalidSettingError: Unknown provider, setting or value (the message lists the valid ones).

    Example:
        >>> get_weights_provider("train:asam,epochs=1").describe()  # doctest: +ELLIPSIS
        'train:asam,epochs=1,...'
    """
    if isinstance(spec, WeightsProvider):
        return spec
    name, rest, items = parse_weights_spec("init" if spec is None else spec)
    if name not in _PROVIDERS:
        raise InvalidSettingError(
            f"unknown weights provider '{name}'{suggest(name, _PROVIDERS)}; "
            f"choose one of: init, train[:key=value,...]")
    items.update({k: v for k, v in overrides.items() if v is not None})
    return _PROVIDERS[name](rest=rest, **items)


# --------------------------------------------------------------------------- init


@register_weights_provider("init")
class InitWeights(WeightsProvider):
    """The network as built: the space's initialisation under the run's seed."""

    name = "init"

    def __init__(self, rest: str = "", **items: Any) -> None:
        extra = sorted(k for k in items if k != "cache_dir") + (["'" + rest + "'"] if rest else [])
        if extra:
            raise InvalidSettingError(f"weights provider 'init' takes no settings, got {', '.join(extra)}")
        self.settings = {}

    def prepare(self, net: nn.Module, arch: str, space: Any, dataset: str, data_dir: str | Path | None = None,
                seed: int = 0, device: torch.device | str | None = None) -> nn.Module:
        """``net`` unchanged (moved to ``device`` when given)."""
        return net if device is None else net.to(device)


# --------------------------------------------------------------------------- supernet


@register_weights_provider("supernet")
def _supernet(rest: str = "", **items: Any) -> WeightsProvider:
    # Imported on use: the module imports this one (the base class and the atomic save).
    from proxybench.weights.supernet import SupernetWeights

    return SupernetWeights(rest, **items)


# --------------------------------------------------------------------------- train


@register_weights_provider("train")
class TrainedWeights(WeightsProvider):
    """Weights from a short training run on the training split minus a held-out part.

    Settings (``train:key=value,...``; all are recorded):

    * ``optimizer``: ``sgd`` (default), ``sam`` or ``asam`` (also as a bare item: ``train:asam``).
    * ``epochs`` (default 1) or ``steps`` (then ``epochs`` is dropped).
    * ``batch_size`` 128, ``lr`` 0.1, ``momentum`` 0.9, ``weight_decay`` 5e-4, ``nesterov`` false,
      ``schedule`` ``cosine`` | ``constant`` -- FlatNAS's SGD.
    * ``rho``: SAM 0.05, ASAM 2.0 by default (only for those optimizers); ``eta`` (ASAM only,
      default 0, FlatNAS's code). See :mod:`proxybench.train.sam`.
    * ``augment`` true: pad-4 crop + flip.
    * ``holdout`` 5000: the last images of the training split never trained on (for evaluation
      and ``flatnas_r``; :func:`proxybench.train.holdout_split`).
    * ``train_images``: train on only the first N images of the rest (file order; default all),
      for small CPU runs (``proxybench search --train-size``).

    A space whose architectures carry an input resolution (OFA) is trained at that
    resolution: batches are resized after augmentation (:func:`proxybench.batch.resize_images`).
    * ``normalization`` ``proxybench``: the preset whose mean/std normalise the images
      (:func:`proxybench.data.normalization_for`).

    ``cache_dir`` (a location, not a setting) and ``cache`` (false: never read or write the
    cache) can be given as well.

    Raises:
        InvalidSettingError: Unknown setting or a value out of range.
    """

    name = "train"
    DEFAULTS: Mapping[str, Any] = {
        "optimizer": "sgd",
        "epochs": 1,
        "steps": None,
        "batch_size": 128,
        "lr": 0.1,
        "momentum": 0.9,
        "weight_decay": 5e-4,
        "nesterov": False,
        "rho": None,
        "eta": None,
        "schedule": "cosine",
        "augment": True,
        "holdout": 5000,
        "train_images": None,
        "normalization": "proxybench",
    }

    def __init__(self, rest: str = "", *, cache_dir: str | Path | None = None, cache: bool = True,
                 **items: Any) -> None:
        from proxybench.presets import get_preset
        from proxybench.train.loop import DEFAULT_RHO, OPTIMIZERS, SCHEDULES

        bare = items.pop("", [])
        if bare:
            if len(bare) > 1 or str(bare[0]).lower() not in OPTIMIZERS or "optimizer" in items:
                raise InvalidSettingError(
                    f"weights spec 'train:{rest}': unexpected item(s) {bare}; write key=value pairs "
                    f"(settings: {', '.join(self.DEFAULTS)}) or one optimizer name ({', '.join(OPTIMIZERS)})")
            items["optimizer"] = bare[0]
        unknown = sorted(set(items) - set(self.DEFAULTS))
        if unknown:
            hint = suggest(unknown[0], self.DEFAULTS)
            sep = " Settings:" if hint else "; settings:"
            raise InvalidSettingError(
                f"weights provider 'train' has no setting {unknown}{hint}{sep} {', '.join(self.DEFAULTS)}")
        s = {**self.DEFAULTS, **items}
        s["optimizer"] = str(s["optimizer"]).lower()
        if s["optimizer"] not in OPTIMIZERS:
            raise InvalidSettingError(
                f"unknown optimizer '{s['optimizer']}'{suggest(s['optimizer'], OPTIMIZERS)}; "
                f"choose one of {', '.join(OPTIMIZERS)}")
        if s["schedule"] not in SCHEDULES:
            raise InvalidSettingError(f"unknown schedule '{s['schedule']}'; choose one of {', '.join(SCHEDULES)}")
        if s["steps"] is not None:
            if "epochs" in items and items["epochs"] is not None:
                raise InvalidSettingError("give epochs or steps, not both")
            s["steps"], s["epochs"] = _positive_int("steps", s["steps"]), None
        elif not isinstance(s["epochs"], (int, float)) or isinstance(s["epochs"], bool) or not s["epochs"] > 0:
            raise InvalidSettingError(f"epochs must be a positive number, got {s['epochs']!r}")
        elif float(s["epochs"]).is_integer():
            s["epochs"] = int(s["epochs"])  # epochs=1 and epochs=1.0 are one setting (and one cache key)
        s["batch_size"] = _positive_int("batch_size", s["batch_size"])
        if not isinstance(s["holdout"], int) or isinstance(s["holdout"], bool) or s["holdout"] < 0:
            raise InvalidSettingError(f"holdout must be an integer >= 0, got {s['holdout']!r}")
        if s["train_images"] is None:  # left out: the settings (hashes, cache keys) of full-data runs stay as they were
            del s["train_images"]
        else:
            s["train_images"] = _positive_int("train_images", s["train_images"])
        for key in ("lr", "momentum", "weight_decay"):
            if not isinstance(s[key], (int, float)) or isinstance(s[key], bool) or s[key] < 0:
                raise InvalidSettingError(f"{key} must be a number >= 0, got {s[key]!r}")
            s[key] = float(s[key])
        for key in ("nesterov", "augment"):
            if not isinstance(s[key], bool):
                raise InvalidSettingError(f"{key} must be true or false, got {s[key]!r}")
        if s["optimizer"] == "sgd":
            if s["rho"] is not None or s["eta"] is not None:
                raise InvalidSettingError("rho and eta apply to optimizer sam or asam, not sgd")
        else:
            s["rho"] = float(DEFAULT_RHO[s["optimizer"]] if s["rho"] is None else s["rho"])
            if s["rho"] < 0:
                raise InvalidSettingError(f"rho must be >= 0, got {s['rho']}")
            if s["optimizer"] == "asam":
                s["eta"] = float(0.0 if s["eta"] is None else s["eta"])
            elif s["eta"] is not None:
                raise InvalidSettingError("eta applies to optimizer asam only")
        get_preset(s["normalization"])  # raises UnknownPresetError with suggestions
        self.settings = s
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_weights_cache_dir()
        self.cache = bool(cache)
        self.last: dict[str, Any] = {}
        self._sources: dict[tuple[str, str], Any] = {}

    def describe(self) -> str:
        """``train:<optimizer>,key=value,...`` in a fixed order, ``None`` values left out; parses back."""
        parts = [self.settings["optimizer"]]
        parts += [f"{k}={_fmt(v)}" for k, v in self.settings.items() if k != "optimizer" and v is not None]
        return "train:" + ",".join(parts)

    # -- data --------------------------------------------------------------------------------
    def _source(self, dataset: str, data_dir: str | Path | None) -> Any:
        from proxybench.data import load_images

        key = (dataset, str(data_dir))
        if key not in self._sources:
            self._sources[key] = load_images(dataset, "train", data_dir=data_dir)
        return self._sources[key]

    def normalization(self, dataset: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
        from proxybench.data import normalization_for
        from proxybench.presets import get_preset

        return normalization_for(get_preset(self.settings["normalization"]), dataset)

    def held_out_batch(self, dataset: str, data_dir: str | Path | None = None, n_images: int = 1280) -> ProxyBatch:
        """The first ``n_images`` images this provider never trains on, normalised as in training.

        The batch ``flatnas_r`` should be given when the weights come from this provider.
        """
        from proxybench.train.loop import held_out_batch, holdout_split

        source = self._source(dataset, data_dir)
        mean, std = self.normalization(dataset)
        return held_out_batch(source, holdout_split(len(source), self.settings["holdout"]), n_images,
                              mean=mean, std=std)

    # -- cache -------------------------------------------------------------------------------
    def cache_key(self, *, arch: str, space: str, dataset: str, num_classes: int, seed: int,
                  device_type: str) -> str:
        payload = {"format": _CACHE_FORMAT, "space": space, "arch": arch, "dataset": dataset,
                   "num_classes": int(num_classes), "seed": int(seed), "device_type": device_type,
                   "settings": self.settings}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def cache_path(self, key: str, space: str, dataset: str) -> Path:
        return self.cache_dir / space / dataset / f"{key[:32]}.pt"

    # -- the work ------------------------------------------------------------------------------
    def prepare(self, net: nn.Module, arch: str, space: Any, dataset: str, data_dir: str | Path | None = None,
                seed: int = 0, device: torch.device | str | None = None) -> nn.Module:
        """Train ``net`` in place (or load its cached training) and return it.

        ``self.last`` then describes what happened: ``from_cache``, ``path``, and for a
        fresh run ``steps``, ``final_loss`` and ``seconds``.
        """
        from proxybench.train.loop import ImageBatches, holdout_split, train

        space_name = str(getattr(space, "name", space))
        device = torch.device(device) if device is not None else next(net.parameters()).device
        num_classes = _num_classes(net)
        key = self.cache_key(arch=arch, space=space_name, dataset=dataset, num_classes=num_classes, seed=seed,
                             device_type=device.type)
        path = self.cache_path(key, space_name, dataset)
        if self.cache and path.is_file():
            try:
                blob = torch.load(path, map_location=device, weights_only=True)
            except Exception:  # noqa: BLE001 - an unreadable cache entry is a miss; it is rewritten below
                blob = {}
            if blob.get("key") == key:
                net.load_state_dict(blob["state_dict"])
                self.last = {"from_cache": True, "path": str(path), **blob.get("meta", {})}
                return net.to(device)

        source = self._source(dataset, data_dir)
        split = holdout_split(len(source), self.settings["holdout"])
        mean, std = self.normalization(dataset)
        s = self.settings
        if s.get("train_images", 0) > len(split.train):
            raise InvalidSettingError(f"train_images={s['train_images']} but only {len(split.train)} training images "
                                      f"are left after holding out {s['holdout']}; ask for fewer")
        train_idx = split.train[: s["train_images"]] if "train_images" in s else split.train
        batches = ImageBatches(source, train_idx, batch_size=s["batch_size"], mean=mean, std=std,
                               augment=s["augment"], seed=seed, shuffle=True, drop_last=True,
                               resolution=input_resolution(space, arch))
        result = train(net, batches, epochs=s["epochs"], steps=s["steps"], optimizer=s["optimizer"], lr=s["lr"],
                       momentum=s["momentum"], weight_decay=s["weight_decay"], nesterov=s["nesterov"],
                       rho=s["rho"], eta=s["eta"] or 0.0, schedule=s["schedule"], seed=seed, device=device)
        meta = {"arch": arch, "space": space_name, "dataset": dataset, "seed": int(seed), "weights": self.describe(),
                "split": split.describe(), "data_origin": source.origin, "steps": result.steps,
                "final_loss": result.final_loss, "seconds": result.seconds, "torch_version": str(torch.__version__)}
        if self.cache:
            state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
            _atomic_save({"key": key, "state_dict": state, "meta": meta}, path)
        self.last = {"from_cache": False, "path": str(path) if self.cache else None, **meta}
        return net


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidSettingError(f"{name} must be a positive integer, got {value!r}")
    return value


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def _num_classes(net: nn.Module) -> int:
    n = getattr(net, "num_classes", None)
    if n is not None:
        return int(n)
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    return int(linears[-1].out_features) if linears else -1


def _atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
