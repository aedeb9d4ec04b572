"""``proxybench evaluate``: clean and CIFAR-10-C corruption error, CE and mCE (thin wrapper over proxybench.evaluation)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import click
from proxybench_cli._options import (
    CONTEXT_SETTINGS,
    data_dir_option,
    emit,
    library_errors,
    space_option_flag,
    space_options_from,
)

__all__ = ["evaluate"]

_UNTRAINED = (
    "weights: UNTRAINED (the network as initialised, seed {seed}); its errors are near chance. "
    "Pass --checkpoint PATH or --weights SPEC to evaluate trained weights."
)


@click.command(name="evaluate", context_settings=CONTEXT_SETTINGS)
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="State dict (torch.save(net.state_dict()), or a dict holding one under 'state_dict', 'model' "
              "or 'net', optionally with an 'arch' entry) of a network of --space.")
@click.option("--arch", default=None, help="Architecture string of --space (built with the space's initialisation "
              "unless --checkpoint or --weights gives weights).")
@click.option("--space", default="nb201", show_default=True, help="Search space of --arch.")
@click.option("--dataset", type=click.Choice(["cifar10", "cifar100"]), default="cifar10", show_default=True,
              help="Dataset; its test split is evaluated.")
@data_dir_option
@click.option("--resolution", type=click.IntRange(min=32), default=None,
              help="Input side in pixels: images are resized (bilinear) to it, then corrupted at it. For OFA it "
              "must be the architecture's resolution. [default: the architecture's (OFA), else the images' size, 32]")
@click.option("--supernet-weights", default=None, metavar="PATH|zoo",
              help="OFA: the supernet the subnet's weights come from (see proxybench search --help).")
@click.option("--random-init", is_flag=True, default=False, help="OFA: allow an untrained, random supernet.")
@space_option_flag
@click.option("--corruptions", default="all", show_default=True,
              help="Comma list of corruptions and/or groups (noise, blur, weather, digital), or 'all'.")
@click.option("--severities", default="1,2,3,4,5", show_default=True, help="Comma list of severities (1..5).")
@click.option("--n-images", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Evaluate the first N test images (10000 = the whole CIFAR test set).")
@click.option("--batch-size", type=click.IntRange(min=1), default=200, show_default=True,
              help="Images per forward pass (does not change the results).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the corruptions (and of the network's initialisation).")
@click.option("--device", default=None, help="Torch device. [default: cuda if available, else cpu]")
@click.option("--weights", "weights_spec", default=None,
              help="Weights provider spec for --arch, e.g. 'train:asam,epochs=1' (proxybench.weights).")
@click.option("--label", default=None, help="The label column. [default: the checkpoint's file name, else --arch]")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Results directory: writes OUT/ood/<label>-<dataset>-r<res>-s<seed>.parquet (and .png with "
              "--plot). Without it the summary is only printed.")
@click.option("--plot", is_flag=True, help="Also write a PNG of error against severity per corruption (needs --out).")
@click.option("--progress/--no-progress", default=False, show_default=True, help="Show a progress bar on stderr.")
@library_errors
def evaluate(checkpoint: Path | None, arch: str | None, space: str, dataset: str, data_dir: Path | None,
             resolution: int | None, corruptions: str, severities: str, n_images: int, batch_size: int, seed: int,
             device: str | None, weights_spec: str | None, label: str | None, out: Path | None, plot: bool,
             progress: bool, supernet_weights: str | None, random_init: bool) -> None:  # fmt: skip
    """Clean error and error under the 15 CIFAR-10-C corruptions; CE per corruption and mCE.

    Corruptions are generated on the fly at the network's input resolution with the
    CIFAR-10-C constants. CE = mean error over the severities and mCE = mean CE over the
    corruptions, in percent, without AlexNet normalisation (FlatNAS's code); the Parquet
    file holds every (corruption, severity) error, so the paper's sum is 5 x CE.

    \b
    Example:
      proxybench evaluate --arch '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|' \\
          --weights train:asam,epochs=1 --data-dir ~/data --out results --plot
      proxybench evaluate --checkpoint net.pt --arch ARCH --resolution 96 --corruptions noise,blur --severities 3,5
    """
    from proxybench.data.corruptions import parse_corruptions
    from proxybench.evaluation import parse_severities

    if checkpoint is None and arch is None:
        raise click.UsageError("give --checkpoint PATH or --arch STR (the network to evaluate)")
    if checkpoint is not None and weights_spec is not None:
        raise click.UsageError("--checkpoint and --weights both give weights; use one")
    if plot and out is None:
        raise click.UsageError("--plot writes a PNG next to the Parquet file; add --out DIR")
    # Check the cheap options before loading data or building anything.
    names = parse_corruptions(corruptions)
    sev = parse_severities(severities)

    import torch

    from proxybench.data.sources import load_images
    from proxybench.evaluation import evaluate_ood
    from proxybench.batch import input_resolution
    from proxybench.spaces import get_space, space_option_names

    source = load_images(dataset, "test", data_dir=data_dir)
    state, arch = _read_checkpoint(checkpoint, arch)
    options = space_options_from(None, supernet_weights, random_init)
    if resolution is not None and "resolutions" in space_option_names(space):
        options["resolutions"] = [resolution]  # a space with a resolution gene (OFA): the architecture's own
    space_obj = get_space(space, **options)
    arch = space_obj.parse(arch)
    if resolution is None:
        resolution = input_resolution(space_obj, arch)
    torch.manual_seed(seed)
    net = space_obj.build(arch, source.num_classes)
    weights: dict[str, Any]
    if state is not None:
        _load_state(net, state, checkpoint)
        weights = {"weights": "checkpoint", "checkpoint": str(checkpoint)}
        click.echo(f"weights: checkpoint {checkpoint}", err=True)
    elif weights_spec is not None:
        provider = _weights_provider(weights_spec)
        net = provider.prepare(net, arch, space_obj, dataset, data_dir=data_dir, seed=seed, device=device)
        weights = {"weights": provider.describe(), "weights_settings": getattr(provider, "settings", {})}
        click.echo(f"weights: {provider.describe()}", err=True)
        if provider.describe() == "init":
            click.echo(_UNTRAINED.format(seed=seed), err=True)
    else:
        weights = {"weights": "init", "init_seed": seed}
        click.echo(_UNTRAINED.format(seed=seed), err=True)

    name = label or (checkpoint.name if checkpoint is not None else arch)
    result = evaluate_ood(
        net, source, resolution=resolution, corruptions=names, severities=sev, n_images=n_images,
        batch_size=batch_size, seed=seed, device=device, label=name, progress=progress,
        settings={"space": space, "arch": arch, **weights},
    )  # fmt: skip
    emit(_format_summary(result, untrained=weights["weights"] == "init"), None, "")
    if out is not None:
        stem = f"{_slug(name)}-{dataset}-r{result.resolution}-s{seed}"
        path = result.write_parquet(out / "ood" / f"{stem}.parquet")
        click.echo(f"rows written to {path}", err=True)
        if plot:
            click.echo(f"plot written to {result.plot(out / 'ood' / f'{stem}.png')}", err=True)


def _read_checkpoint(checkpoint: Path | None, arch: str | None) -> tuple[dict[str, Any] | None, str]:
    """The state dict in ``checkpoint`` (or ``None``) and the architecture to build."""
    if checkpoint is None:
        assert arch is not None
        return None, arch
    import torch

    from proxybench.errors import InvalidSettingError

    try:
        obj = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to read is the user's file: say so in one line
        reason = " ".join(str(exc).split())[:160]
        raise InvalidSettingError(
            f"cannot read {checkpoint} as a state dict ({type(exc).__name__}: {reason}); save it with "
            "torch.save(net.state_dict(), PATH)"
        ) from None
    stored_arch = None
    if isinstance(obj, dict):
        stored_arch = obj.get("arch") if isinstance(obj.get("arch"), str) else None
        for key in ("state_dict", "model", "net"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InvalidSettingError(f"{checkpoint} holds no state dict (a dict of tensors); save net.state_dict()")
    chosen = arch or stored_arch
    if chosen is None:
        raise click.UsageError(f"{checkpoint} does not name its architecture; add --arch STR")
    return obj, chosen


def _load_state(net: Any, state: dict[str, Any], checkpoint: Path | None) -> None:
    from proxybench.errors import InvalidSettingError

    if all(k.startswith("module.") for k in state):  # saved from DataParallel
        state = {k[len("module."):]: v for k, v in state.items()}
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = " ".join(str(exc).split())[:200]
        raise InvalidSettingError(f"{checkpoint} does not fit --arch's network: {first}") from None


def _weights_provider(spec: str) -> Any:
    """``proxybench.weights.get_weights_provider(spec)`` when that module provides it."""
    from proxybench.errors import InvalidSettingError

    try:
        from proxybench import weights as weights_module
    except ImportError:
        weights_module = None
    factory = getattr(weights_module, "get_weights_provider", None)
    if factory is None:
        raise InvalidSettingError("--weights is not available yet (proxybench.weights has no get_weights_provider)")
    return factory(spec)


def _slug(label: str, limit: int = 40) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("._-") or "net"
    if slug == label and len(slug) <= limit:
        return slug
    return f"{slug[:limit - 9].rstrip('._-')}-{hashlib.sha256(label.encode()).hexdigest()[:8]}"


def _format_summary(result: Any, untrained: bool) -> str:
    lines = [
        f"{result.label} | {result.dataset} {result.split} | {result.resolution}px | n={result.n} | seed {result.seed}"
        + (" | UNTRAINED weights" if untrained else ""),
        f"clean error      {result.clean_error:7.2f} %",
    ]
    sev = result.severities
    header = "corruption        " + " ".join(f"   s{s}" for s in sev) + "      CE"
    lines.append(header)
    ce = result.ce("mean")
    for c in result.corruptions:
        values = " ".join(f"{result.errors[(c, s)]:5.1f}" for s in sev)
        lines.append(f"{c:18s}{values} {ce[c]:7.2f}")
    lines.append(f"mCE (mean over corruptions of the mean over severities, %) {result.mce:.2f}")
    return "\n".join(lines) + "\n"
