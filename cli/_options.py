"""Option decorators and error handling shared by every command module."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from proxybench.errors import ProxybenchError

__all__ = ["CONTEXT_SETTINGS", "library_errors", "data_dir_option", "seed_option", "emit"]

F = TypeVar("F", bound=Callable[..., Any])

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def library_errors(fn: F) -> F:
    """Turn the library's expected errors into one ``Error: ...`` line and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ProxybenchError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper  # type: ignore[return-value]


def data_dir_option(fn: F) -> F:
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        envvar="PROXYBENCH_DATA_DIR",
        show_envvar=True,
        help="Folder with local datasets (cifar10/train.parquet, an image folder cifar10/train/<class>/, "
        "or torchvision's cifar-10-batches-py). Without it the dataset is downloaded.",
    )(fn)


def seed_option(fn: F) -> F:
    return click.option("--seed", type=click.IntRange(min=0), default=None, help="Random seed (default: the preset's).")(fn)


def emit(text: str, output: Path | None, written: str) -> None:
    """Print ``text``, or write it to ``output`` and say ``"<written> written to <output>"`` on stderr."""
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc.strerror or exc}") from None
    click.echo(f"{written} written to {output}", err=True)
