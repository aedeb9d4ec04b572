"""One-shot supernet weights: train an NB201 supernet (resumably) and score its paths.

**Training** (:func:`train_supernet`, ``proxybench supernet train``) is GeNAS's
(clovaai/GeNAS ``train_supernet/train.py``, following SPOS): every step samples one op per edge
uniformly (:func:`~proxybench.spaces.nb201_supernet.sample_path`) and trains that path with
cross-entropy; SGD lr 0.025 with cosine decay to 0.001, momentum 0.9, weight decay 3e-4 on
every parameter, batch 64, gradient norm clipped at 5 (``clip_grad_norm_``); the README trains
250 epochs (``--epochs 250``; its argparse default is 50). Pad-4 crop + flip augmentation, as
GeNAS's CIFAR transforms. Where this differs from GeNAS's code:

* the cosine schedule is per step (GeNAS steps ``CosineAnnealingLR`` once per epoch, *before*
  the epoch, so its first epoch already runs at the second epoch's rate);
* parameters off the sampled path keep ``grad=None`` and are left alone by SGD. GeNAS ran on
  PyTorch 1.7, whose ``zero_grad()`` zeroes gradients instead, so after an op's first use its
  weights kept moving by momentum and weight decay on steps that did not sample it;
* data: GeNAS trains on half of the CIFAR training set (NB201's ``cifar-split.txt``) and
  scores on the other half; here the last ``holdout`` images of the training split (default
  25,000, half) are held out, the convention of the ``train`` provider
  (:func:`proxybench.train.holdout_split`).

The checkpoint (one file, written atomically every ``save_every`` steps and at the end) holds
the supernet's state, the optimizer state (momentum buffers), the schedule, torch's RNG state,
the step, the per-step losses and every setting; running again with the same path continues
from the last saved step and gives the same weights, bit for bit, as an uninterrupted run on
the same device and thread count (the path and the batch of step ``s`` depend only on the seed
and ``s``).

**The provider** ``supernet:PATH[,recalibrate=K][,batch_size=B][,bn_average=ema|cumulative]``
loads the checkpoint once, then for each architecture copies the path's weights into the
standalone network (:func:`~proxybench.spaces.nb201_supernet.inherit`) and recomputes its BN
statistics on ``K`` augmented training batches of ``B`` images (default: GeNAS's
ceil(850 / 64) = 14 batches of the supernet's batch size; running mean 0 / variance 1 first,
momentum 0.1 kept; see :func:`~proxybench.spaces.nb201_supernet.recalibrate_bn`). GeNAS draws
fresh shuffled batches per candidate; here the batches depend only on the run's seed, so
every architecture of a run is recalibrated on the same images. ``K=0`` keeps the supernet's
running statistics. ``held_out_batch`` gives the first images of the checkpoint's held-out
part, normalised as in training, which is what ``genas`` evaluates on.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from proxybench._naming import suggest
from proxybench.batch import ProxyBatch
from proxybench.errors import InvalidSettingError
from proxybench.weights.providers import WeightsProvider, _atomic_save

__all__ = [
    "CHECKPOINT_KIND",
    "SUPERNET_DEFAULTS",
    "SupernetTrainResult",
    "SupernetWeights",
    "train_supernet",
    "load_supernet_checkpoint",
    "file_sha256",
]

CHECKPOINT_KIND = "proxybench.nb201_supernet"
_FORMAT = 1

#: GeNAS's supernet training settings (``train_supernet/train.py`` argparse defaults and the
#: README's command), plus the data choices; ``epochs``/``steps`` have no default.
SUPERNET_DEFAULTS: Mapping[str, Any] = {
    "space": "nb201",
    "dataset": "cifar10",
    "epochs": None,
    "steps": None,
    "batch_size": 64,
    "lr": 0.025,
    "lr_min": 0.001,
    "momentum": 0.9,
    "weight_decay": 3e-4,
    "grad_clip": 5.0,
    "augment": True,
    "holdout": 25000,
    "normalization": "proxybench",
    "seed": 0,
    "sampling": "uniform",
}

#: Settings that describe the training but may differ between the sessions of one run.
_SESSION_ONLY = ("save_every", "stop_at", "device", "progress")


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_supernet_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`train_supernet`.

    Raises:
        InvalidSettingError: The file is missing, unreadable or not a supernet checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidSettingError(f"supernet checkpoint {path} does not exist; train one with: proxybench supernet "
                                  "train --out PATH")
    try:
        blob = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to read is the file's: say so in one line
        reason = " ".join(str(exc).split())[:160]
        raise InvalidSettingError(f"cannot read {path} as a supernet checkpoint ({type(exc).__name__}: {reason})") \
            from None
    if not isinstance(blob, dict) or blob.get("kind") != CHECKPOINT_KIND:
        raise InvalidSettingError(f"{path} is not a proxybench supernet checkpoint (written by "
                                  "'proxybench supernet train')")
    if blob.get("format") != _FORMAT:
        raise InvalidSettingError(f"{path} has checkpoint format {blob.get('format')!r}; this proxybench reads "
                                  f"format {_FORMAT}")
    return blob


# --------------------------------------------------------------------------- data


def _normalization(name: str, dataset: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    from proxybench.data import normalization_for
    from proxybench.presets import get_preset

    return normalization_for(get_preset(name), dataset)


class _StepBatches:
    """The batch of any training step: epoch ``s // per_epoch`` in the order of
    ``default_rng([seed, epoch])``, augmentation from ``default_rng([seed, epoch, b])``."""

    def __init__(self, source: Any, indices: np.ndarray, *, batch_size: int, mean: Any, std: Any, augment: bool,
                 seed: int) -> None:
        self.source, self.indices = source, indices
        self.batch_size, self.mean, self.std = batch_size, mean, std
        self.augment, self.seed = augment, seed
        self.per_epoch = len(indices) // batch_size
        if self.per_epoch < 1:
            raise InvalidSettingError(f"batch_size {batch_size} is larger than the {len(indices)} images to train on")
        self._order: tuple[int, np.ndarray] | None = None

    def __call__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        from proxybench.data.batches import _augment, _normalise

        epoch, b = divmod(int(step), self.per_epoch)
        if self._order is None or self._order[0] != epoch:
            rng = np.random.default_rng([self.seed, epoch])
            self._order = (epoch, self.indices[rng.permutation(len(self.indices))])
        idx = self._order[1][b * self.batch_size:(b + 1) * self.batch_size]
        images = self.source.images(idx)
        if self.augment:
            images = _augment(images, np.random.default_rng([self.seed, epoch, b]))
        targets = torch.from_numpy(self.source.labels[idx].astype(np.int64, copy=True))
        return _normalise(images, self.mean, self.std), targets


# --------------------------------------------------------------------------- training


@dataclass(frozen=True)
class SupernetTrainResult:
    """What :func:`train_supernet` did.

    Attributes:
        path: The checkpoint.
        step: Steps trained so far (the checkpoint's).
        total_steps: Steps of the whole schedule.
        resumed_from: The step this session started at (0 for a fresh run).
        final_loss: Mean training loss of the last ``min(step, steps_per_epoch)`` steps.
        seconds: Wall time of this session.
        settings: The checkpoint's settings.
    """

    path: Path
    step: int
    total_steps: int
    resumed_from: int
    final_loss: float
    seconds: float
    settings: dict[str, Any]

    @property
    def finished(self) -> bool:
        return self.step >= self.total_steps


def _resolve_settings(given: Mapping[str, Any], stored: Mapping[str, Any] | None, out: Path) -> dict[str, Any]:
    unknown = sorted(set(given) - set(SUPERNET_DEFAULTS))
    if unknown:
        raise InvalidSettingError(f"supernet training has no setting {unknown}{suggest(unknown[0], SUPERNET_DEFAULTS)}"
                                  f"; settings: {', '.join(SUPERNET_DEFAULTS)}")
    explicit = {k: v for k, v in given.items() if v is not None}
    if explicit.get("epochs") == 0 and explicit.get("steps") is not None:
        explicit.pop("epochs")  # --epochs 0 --steps S: the length is given in steps
    if stored is not None:
        clash = {k: (v, stored.get(k)) for k, v in explicit.items() if k in SUPERNET_DEFAULTS and k != "epochs"
                 and k != "steps" and stored.get(k) != v}
        for key in ("epochs", "steps"):
            if key in explicit and explicit[key] != stored.get(key):
                clash[key] = (explicit[key], stored.get(key))
        if clash:
            text = ", ".join(f"{k} {a!r} (checkpoint: {b!r})" for k, (a, b) in sorted(clash.items()))
            raise InvalidSettingError(f"{out} was trained with other settings: {text}; resume with the checkpoint's "
                                      "settings (or leave those options out), or choose another --out")
        return dict(stored)
    s = {**SUPERNET_DEFAULTS, **explicit}
    if s["space"] != "nb201":
        raise InvalidSettingError(f"supernet training supports space 'nb201' only, got {s['space']!r}")
    if s["sampling"] != "uniform":
        raise InvalidSettingError(f"sampling must be 'uniform' (SPOS), got {s['sampling']!r}")
    if s["steps"] is not None:
        if s["epochs"] is not None:
            raise InvalidSettingError("give epochs or steps, not both (--epochs 0 --steps S is allowed)")
        if isinstance(s["steps"], bool) or not isinstance(s["steps"], int) or s["steps"] < 1:
            raise InvalidSettingError(f"steps must be a positive integer, got {s['steps']!r}")
    elif s["epochs"] is None:
        raise InvalidSettingError("give the training length: epochs (GeNAS trains 250) or steps")
    elif isinstance(s["epochs"], bool) or not isinstance(s["epochs"], (int, float)) or not s["epochs"] > 0:
        raise InvalidSettingError(f"epochs must be a positive number, got {s['epochs']!r}")
    elif float(s["epochs"]).is_integer():
        s["epochs"] = int(s["epochs"])
    for key in ("batch_size", "seed", "holdout"):
        if isinstance(s[key], bool) or not isinstance(s[key], int) or s[key] < (1 if key == "batch_size" else 0):
            raise InvalidSettingError(f"{key} must be an integer >= {1 if key == 'batch_size' else 0}, got {s[key]!r}")
    for key in ("lr", "lr_min", "momentum", "weight_decay", "grad_clip"):
        if isinstance(s[key], bool) or not isinstance(s[key], (int, float)) or not s[key] >= 0:
            raise InvalidSettingError(f"{key} must be a number >= 0, got {s[key]!r}")
        s[key] = float(s[key])
    if not isinstance(s["augment"], bool):
        raise InvalidSettingError(f"augment must be true or false, got {s['augment']!r}")
    _normalization(s["normalization"], s["dataset"])  # raises UnknownPresetError with suggestions
    return s


def _lr_at(s: Mapping[str, Any], step: int, total: int) -> float:
    return s["lr_min"] + (s["lr"] - s["lr_min"]) * 0.5 * (1.0 + math.cos(math.pi * step / total))


def train_supernet(
    out: str | Path,
    *,
    data_dir: str | Path | None = None,
    device: torch.device | str | None = "cpu",
    save_every: int | None = None,
    stop_at: int | None = None,
    progress: bool = False,
    download: bool = True,
    **settings: Any,
) -> SupernetTrainResult:
    """Train (or continue training) an NB201 one-shot supernet into the checkpoint ``out``.

    Args:
        out: Checkpoint file. When it exists, training continues from its last saved step,
            with its settings (settings given here must agree with them).
        data_dir: Folder with local datasets (:func:`proxybench.data.load_images`).
        device: Where to train (``cpu``, ``cuda``...).
        save_every: Write the checkpoint every this many steps (default: once per epoch),
            and always at the end.
        stop_at: Stop after this step (of the whole schedule) and save; run again to go on.
        progress: Show a tqdm bar.
        download: Allow downloading the dataset.
        **settings: Keys of :data:`SUPERNET_DEFAULTS` (``epochs`` or ``steps``, ``lr``,
            ``batch_size``, ``seed``, ``holdout``...); ``None`` values are ignored.

    Returns:
        A :class:`SupernetTrainResult`.

    Raises:
        InvalidSettingError: Unknown or bad settings, or settings that disagree with the checkpoint's.
        FloatingPointError: The loss became non-finite.

    Example:
        >>> train_supernet("supernet.pt", epochs=250, data_dir="data", device="cuda")  # doctest: +SKIP
    """
    from proxybench.data import load_images
    from proxybench.spaces.nb201_supernet import NB201Supernet, sample_path
    from proxybench.train.loop import holdout_split

    out = Path(out)
    started = time.perf_counter()
    blob = load_supernet_checkpoint(out) if out.exists() else None
    s = _resolve_settings(settings, blob["settings"] if blob is not None else None, out)
    source = load_images(s["dataset"], "train", data_dir=data_dir, download=download)
    split = holdout_split(len(source), s["holdout"])
    mean, std = _normalization(s["normalization"], s["dataset"])
    batches = _StepBatches(source, split.train, batch_size=s["batch_size"], mean=mean, std=std,
                           augment=s["augment"], seed=s["seed"])
    total = s["steps"] if s["steps"] is not None else round(s["epochs"] * batches.per_epoch)
    if total < 1:
        raise InvalidSettingError(f"{s['epochs']} epochs of {batches.per_epoch} steps is no step; train longer")
    if save_every is None:
        save_every = batches.per_epoch
    if save_every < 1:
        raise InvalidSettingError(f"save_every must be >= 1, got {save_every}")
    end = total if stop_at is None else min(int(stop_at), total)
    if end < 1:
        raise InvalidSettingError(f"stop_at must be >= 1, got {stop_at}")

    device = torch.device(device) if device is not None else torch.device("cpu")
    fork_devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(s["seed"])
        net = NB201Supernet(source.num_classes)  # built on the CPU: the same weights whatever the device
        net.to(device).train()
        opt = torch.optim.SGD(net.parameters(), lr=s["lr"], momentum=s["momentum"], weight_decay=s["weight_decay"])
        step, losses, seconds_before = 0, [], 0.0
        if blob is not None:
            net.load_state_dict(blob["state_dict"])
            opt.load_state_dict(blob["optimizer"])
            torch.set_rng_state(blob["rng"]["torch"])
            step, losses = int(blob["step"]), [float(v) for v in blob["losses"]]
            seconds_before = float(blob.get("meta", {}).get("seconds", 0.0))
            if blob.get("total_steps") != total:
                raise InvalidSettingError(f"{out} has a schedule of {blob.get('total_steps')} steps but these "
                                          f"settings give {total} (different data?); choose another --out")
        resumed_from = step
        meta = {"data_origin": source.origin, "split": split.describe(), "steps_per_epoch": batches.per_epoch,
                "torch_version": str(torch.__version__), "device": str(device), "num_classes": source.num_classes}

        def save() -> None:
            state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
            optim = opt.state_dict()
            for entry in optim["state"].values():
                for key, value in list(entry.items()):
                    if isinstance(value, torch.Tensor):
                        entry[key] = value.detach().cpu()
            _atomic_save({
                "format": _FORMAT, "kind": CHECKPOINT_KIND, "settings": s, "step": step, "total_steps": total,
                "epoch": step / batches.per_epoch, "state_dict": state, "optimizer": optim,
                "scheduler": {"kind": "cosine_per_step", "lr": s["lr"], "lr_min": s["lr_min"], "total_steps": total,
                              "last_lr": _lr_at(s, max(step - 1, 0), total)},
                "rng": {"torch": torch.get_rng_state()}, "losses": losses,
                "meta": {**meta, "seconds": seconds_before + time.perf_counter() - started},
            }, out)

        bar = None
        if progress and step < end:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, initial=step, desc=f"supernet {out.name}", unit="step")
        try:
            while step < end:
                current = _lr_at(s, step, total)
                for group in opt.param_groups:
                    group["lr"] = current
                x, y = batches(step)
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                opt.zero_grad(set_to_none=True)
                loss = F.cross_entropy(net(x, sample_path(s["seed"], step)), y)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"supernet training loss is {loss.item()} at step {step} "
                                             f"(lr {current:g}); lower lr")
                loss.backward()
                if s["grad_clip"] > 0:
                    nn.utils.clip_grad_norm_(net.parameters(), s["grad_clip"])
                opt.step()
                losses.append(float(loss.detach()))
                step += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{losses[-1]:.3f}", lr=f"{current:.4g}")
                if step % save_every == 0 and step < end:
                    save()
            if blob is None or step > resumed_from:
                save()
        finally:
            if bar is not None:
                bar.close()
    window = losses[-batches.per_epoch:]
    return SupernetTrainResult(path=out, step=step, total_steps=total, resumed_from=resumed_from,
                               final_loss=float(np.mean(window)) if window else float("nan"),
                               seconds=time.perf_counter() - started, settings=dict(s))


# --------------------------------------------------------------------------- provider


class SupernetWeights(WeightsProvider):
    """Weights inherited from a one-shot supernet checkpoint, with BN recalibration.

    Spec: ``supernet:PATH[,recalibrate=K][,batch_size=B][,bn_average=ema|cumulative]``
    (see the module docstring). ``describe()`` is
    ``supernet:<file name>@<first 12 hex of its SHA-256>,recalibrate=K,batch_size=B``
    (``,bn_average=cumulative`` when set), and ``settings`` hold the checkpoint's name,
    SHA-256, step and training settings, so scores of different checkpoints never share a
    settings hash.

    Raises:
        InvalidSettingError: No path, a missing or foreign file, unknown settings.
    """

    name = "supernet"
    DEFAULTS: Mapping[str, Any] = {"recalibrate": None, "batch_size": None, "bn_average": "ema"}

    def __init__(self, rest: str = "", *, cache_dir: str | Path | None = None, cache: bool = True,
                 **items: Any) -> None:
        bare = items.pop("", [])
        if len(bare) != 1:
            raise InvalidSettingError(
                f"weights spec 'supernet:{rest}' needs exactly one checkpoint path: "
                "supernet:PATH[,recalibrate=K][,batch_size=B][,bn_average=ema|cumulative]")
        unknown = sorted(set(items) - set(self.DEFAULTS))
        if unknown:
            raise InvalidSettingError(f"weights provider 'supernet' has no setting {unknown}"
                                      f"{suggest(unknown[0], self.DEFAULTS)}; settings: {', '.join(self.DEFAULTS)}")
        self.path = Path(str(bare[0])).expanduser()
        blob = load_supernet_checkpoint(self.path)
        self.sha256 = file_sha256(self.path)
        self.trained = dict(blob["settings"])
        self.num_classes = int(blob.get("meta", {}).get("num_classes", blob["state_dict"]["classifier.bias"].numel()))
        self._state = blob["state_dict"]
        s = {**self.DEFAULTS, **items}
        batch_size = self.trained["batch_size"] if s["batch_size"] is None else s["batch_size"]
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidSettingError(f"batch_size must be a positive integer, got {batch_size!r}")
        from proxybench.spaces.nb201_supernet import recalibration_batches

        k = recalibration_batches(s["recalibrate"], batch_size)
        if isinstance(s["recalibrate"], bool) or k < 0:
            raise InvalidSettingError(f"recalibrate must be an integer >= 0 (batches), got {s['recalibrate']!r}")
        if s["bn_average"] not in ("ema", "cumulative"):
            raise InvalidSettingError(f"bn_average must be 'ema' or 'cumulative', got {s['bn_average']!r}")
        self.settings = {
            "checkpoint": self.path.name, "sha256": self.sha256, "step": int(blob["step"]),
            "total_steps": int(blob["total_steps"]), "recalibrate": k, "batch_size": batch_size,
            "bn_average": s["bn_average"], "supernet": self.trained,
        }
        self.last: dict[str, Any] = {}
        self._sources: dict[tuple[str, str], Any] = {}
        self._recal: dict[tuple[str, str, int], list[torch.Tensor]] = {}

    def describe(self) -> str:
        s = self.settings
        text = f"supernet:{self.path.name}@{self.sha256[:12]},recalibrate={s['recalibrate']},batch_size={s['batch_size']}"
        return text + (f",bn_average={s['bn_average']}" if s["bn_average"] != "ema" else "")

    # -- data --------------------------------------------------------------------------------
    def _check_dataset(self, dataset: str) -> None:
        if dataset != self.trained["dataset"]:
            raise InvalidSettingError(f"supernet {self.path.name} was trained on {self.trained['dataset']}, not "
                                      f"{dataset}; score --dataset {self.trained['dataset']} or train a supernet on "
                                      f"{dataset}")

    def _source(self, dataset: str, data_dir: str | Path | None) -> Any:
        from proxybench.data import load_images

        self._check_dataset(dataset)
        key = (dataset, str(data_dir))
        if key not in self._sources:
            self._sources[key] = load_images(dataset, "train", data_dir=data_dir)
        return self._sources[key]

    def _split(self, source: Any) -> Any:
        from proxybench.train.loop import holdout_split

        return holdout_split(len(source), self.trained["holdout"])

    def held_out_batch(self, dataset: str, data_dir: str | Path | None = None, n_images: int = 1280) -> ProxyBatch:
        """The first ``n_images`` images the supernet never trained on, normalised as in training."""
        from proxybench.train.loop import held_out_batch

        source = self._source(dataset, data_dir)
        mean, std = _normalization(self.trained["normalization"], dataset)
        return held_out_batch(source, self._split(source), n_images, mean=mean, std=std)

    def recalibration_batches(self, dataset: str, data_dir: str | Path | None, seed: int) -> list[torch.Tensor]:
        """The ``recalibrate`` input batches: training images (not held out) drawn with
        ``default_rng([seed, 850])``, augmented when the supernet was, the same for every architecture."""
        from proxybench.data.batches import _augment, _normalise

        key = (dataset, str(data_dir), int(seed))
        if key not in self._recal:
            source = self._source(dataset, data_dir)
            train_idx = self._split(source).train
            k, b = self.settings["recalibrate"], self.settings["batch_size"]
            if k * b > len(train_idx):
                raise InvalidSettingError(f"recalibration needs {k} x {b} images but only {len(train_idx)} are "
                                          "training images; lower recalibrate or batch_size")
            rng = np.random.default_rng([int(seed), 850])
            chosen = train_idx[rng.permutation(len(train_idx))[:k * b]]
            mean, std = _normalization(self.trained["normalization"], dataset)
            out = []
            for i in range(k):
                images = source.images(chosen[i * b:(i + 1) * b])
                if self.trained["augment"]:
                    images = _augment(images, rng)
                out.append(_normalise(images, mean, std))
            self._recal[key] = out
        return self._recal[key]

    # -- the work ------------------------------------------------------------------------------
    def prepare(self, net: nn.Module, arch: str, space: Any, dataset: str, data_dir: str | Path | None = None,
                seed: int = 0, device: torch.device | str | None = None) -> nn.Module:
        """Load the path ``arch``'s supernet weights into ``net`` and recalibrate its BatchNorm.

        ``net`` must be the space's network of ``arch`` (``space.build(arch, num_classes)``).

        Raises:
            InvalidSettingError: Another space or dataset, or a head of another size.
        """
        from proxybench.spaces.nb201_supernet import inherit, recalibrate_bn

        space_name = str(getattr(space, "name", space))
        if space_name != self.trained["space"]:
            raise InvalidSettingError(f"supernet {self.path.name} is an {self.trained['space']} supernet, not "
                                      f"{space_name}")
        self._check_dataset(dataset)
        n = getattr(net, "num_classes", None)
        if n is not None and int(n) != self.num_classes:
            raise InvalidSettingError(f"supernet {self.path.name} has {self.num_classes} classes, the network {n}")
        started = time.perf_counter()
        net.load_state_dict(inherit(self._state, arch), strict=True)
        device = torch.device(device) if device is not None else next(net.parameters()).device
        net.to(device)
        count = 0
        if self.settings["recalibrate"] > 0:
            count = recalibrate_bn(net, self.recalibration_batches(dataset, data_dir, seed),
                                   average=self.settings["bn_average"], device=device)
        self.last = {"arch": arch, "recalibrated_batches": count, "seconds": time.perf_counter() - started,
                     "weights": self.describe()}
        return net

