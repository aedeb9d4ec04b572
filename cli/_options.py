"""Option decorators and error handling shared by every command module."""

from __future__ import annotations

import contextlib
import functools
import json
import shlex
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click

from proxybench.errors import ProxybenchError

__all__ = ["CONTEXT_SETTINGS", "ProxybenchGroup", "command_line", "signals_as_interrupts", "Terminated", "LazyChoice", "LazyHelpOption", "library_errors", "data_dir_option", "seed_option",
           "space_options", "space_option_flag", "emit", "parse_resolutions", "space_options_from"]

F = TypeVar("F", bound=Callable[..., Any])

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


_ARGV_KEY = "proxybench.argv"


class ProxybenchGroup(click.Group):
    """The top-level group; keeps the arguments it was given, so a command can print the
    command line that repeats it (:func:`command_line`)."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        argv = list(args)
        ctx = super().make_context(info_name, args, parent=parent, **extra)
        ctx.meta[_ARGV_KEY] = argv  # shared with every subcommand's context
        return ctx


def command_line(drop: tuple[str, ...] = ()) -> str:
    """``proxybench`` and the arguments of the running command, quoted for a shell, without ``drop``."""
    ctx = click.get_current_context(silent=True)
    argv = [a for a in (ctx.meta.get(_ARGV_KEY, []) if ctx is not None else []) if a not in drop]
    return shlex.join(["proxybench", *argv])


class Terminated(KeyboardInterrupt):
    """SIGTERM (what SLURM and ``kill`` send) turned into a ``KeyboardInterrupt``, so the run
    stops as on Ctrl-C: its writer keeps what it journaled and the command says so."""

    reason = "terminated (SIGTERM)"


@contextlib.contextmanager
def signals_as_interrupts() -> Iterator[list[int]]:
    """While inside, SIGTERM raises :class:`Terminated` in the main thread (once: a second
    SIGTERM kills as before). Yields a list that gets the number of the signal that stopped
    the command (SIGINT when Ctrl-C raised the ``KeyboardInterrupt``), for the exit code."""
    caught: list[int] = []

    def on_sigterm(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        caught.append(signum)
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, on_sigterm)
    except ValueError:  # not the main thread: leave signals alone
        yield caught
        return
    try:
        yield caught
    finally:
        signal.signal(signal.SIGTERM, previous)


class LazyChoice(click.Choice):
    """A ``click.Choice`` whose choices come from ``load()`` on first use.

    Keeps the command line's start-up fast: the library module that defines the choices (and
    imports duckdb, numpy or torch) is imported when the command runs or prints its own help,
    not whenever ``proxybench`` starts.
    """

    def __init__(self, load: Callable[[], Any], case_sensitive: bool = True) -> None:
        self._load: Callable[[], Any] | None = load
        self._choices: tuple[Any, ...] = ()
        self.case_sensitive = case_sensitive

    @property  # type: ignore[override]
    def choices(self) -> tuple[Any, ...]:
        if self._load is not None:
            self._choices, self._load = tuple(self._load()), None
        return self._choices


class LazyHelpOption(click.Option):
    """A ``click.Option`` whose help text is built by ``help_from()`` when help is shown (see :class:`LazyChoice`).

    Use as ``@click.option("--by", cls=LazyHelpOption, help_from=lambda: ...)``.
    """

    def __init__(self, *args: Any, help_from: Callable[[], str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._help_from: Callable[[], str] | None = help_from

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        if self._help_from is not None:
            self.help, self._help_from = self._help_from(), None
        return super().get_help_record(ctx)


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


_SPACE_OPTION_KEY = "proxybench.space_option"


def _keep_space_options(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    """Parse ``--space-option KEY=VALUE`` into ``ctx.meta`` (VALUE read as JSON when it is JSON, else text).

    Kept out of the commands' signatures (``expose_value=False``), so any command that takes the
    shared space flags takes this one too and :func:`space_options_from` passes it on.
    """
    parsed: dict[str, Any] = {}
    for text in values:
        key, sep, raw = text.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{text!r}: write KEY=VALUE, e.g. channels=8", param_hint="--space-option")
        try:
            parsed[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            parsed[key.strip()] = raw
    ctx.meta[_SPACE_OPTION_KEY] = parsed
    return values


def space_option_flag(fn: F) -> F:
    """``--space-option KEY=VALUE``: any space's options (e.g. darts ``channels=8``), read by
    :func:`space_options_from`."""
    return click.option("--space-option", "space_option", multiple=True, metavar="KEY=VALUE", expose_value=False,
                        callback=_keep_space_options,
                        help="An option of the search space, repeatable (see its docs), e.g. for darts "
                        "--space-option channels=8 --space-option layers=5 (a small network for CPU runs) "
                        "or --space-option preset=darts (C=36, 20 cells).")(fn)


def space_options(fn: F) -> F:
    """:func:`space_option_flag` and the ``ofa`` space's ``--resolution``, ``--supernet-weights``
    and ``--random-init``."""
    fn = space_option_flag(fn)
    fn = click.option("--random-init", is_flag=True, default=False,
                      help="OFA without supernet weights: continue with an untrained, randomly initialised "
                      "supernet (recorded in every row and in the run's metadata).")(fn)
    fn = click.option("--supernet-weights", default=None, metavar="PATH|zoo",
                      help="OFA supernet weights: a state dict of ofa_mbv3_d234_e346_k357_w1.0, or 'zoo' to "
                      "download them from the ofa model zoo (once, into torch's hub directory).")(fn)
    return click.option("--resolution", "resolution", default=None, metavar="MIN:MAX:STEP|R1,R2,...",
                        help="OFA input resolutions the resolution gene indexes [default: 128:224:4]; small ones "
                        "(e.g. 32:64:16) make CPU runs cheap.")(fn)


def parse_resolutions(text: str) -> list[int]:
    """``"128:224:4"`` (inclusive) or ``"32,48,64"`` as a list of ints; a one-line error otherwise."""
    try:
        if ":" in text:
            low, high, step = (int(v) for v in text.split(":"))
            if step < 1 or high < low:
                raise ValueError
            return list(range(low, high + 1, step))
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"{text!r}: write MIN:MAX:STEP (e.g. 128:224:4) or a list (e.g. 32,48,64)",
                                 param_hint="--resolution") from None


def space_options_from(resolution: str | None, supernet_weights: str | None, random_init: bool) -> dict[str, Any]:
    """The ``space_options`` of the library's calls for the flags of :func:`space_options` (unset ones left out).

    Raises:
        click.UsageError: An option given both as ``--space-option`` and as its own flag.
    """
    ctx = click.get_current_context(silent=True)
    options: dict[str, Any] = dict(ctx.meta.get(_SPACE_OPTION_KEY, {})) if ctx is not None else {}
    flags = {"resolutions": resolution is not None, "supernet_weights": supernet_weights is not None,
             "random_init": random_init}
    twice = sorted(k for k, given in flags.items() if given and k in options)
    if twice:
        raise click.UsageError(f"space option {twice[0]!r} is given twice: as --space-option and as its own flag")
    if resolution is not None:
        options["resolutions"] = parse_resolutions(resolution)
    if supernet_weights is not None:
        options["supernet_weights"] = supernet_weights
    if random_init:
        options["random_init"] = True
    return options


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
