"""The ``command`` decorator: option groups, ``--config`` and exit codes, for every command.

Typer has no option groups: each option is one parameter of the command function, so options
shared by several commands (the store, the target model, the proxy) would be declared again
in every command, and a command with 25 options would be a function of 25 parameters. The
decorator lets a command take an :class:`~amplify_agents.cli.options.OptionGroup` dataclass
instead: it rewrites the function's ``__signature__`` so that typer sees one parameter per
field, then packs the parsed values back into the dataclass before calling the command.

It also gives every command ``--config file.toml`` (see :mod:`amplify_agents.cli.config`)
and the error contract: a runtime failure is one red line and exit code 1, never a traceback.
:class:`OneLineErrors`, the command group of the ``amplify-agents`` app, keeps the same
contract for bad usage (an unknown option or command, a bad value): one line, exit code 2.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import sys
import traceback
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import typer
from rich.text import Text
from typer.core import TyperGroup

from amplify_agents.cli.common import err_console, quiet_libraries
from amplify_agents.cli.config import CLICK_ERRORS, merge_config
from amplify_agents.cli.options import ConfigPath, OptionGroup
from amplify_agents.errors import EndpointError

__all__ = ["OneLineErrors", "command", "print_error"]

Command = Callable[..., None]

# Exceptions click turns into its own messages and exit codes (bad usage: 2).
_PASS_THROUGH: tuple[type[BaseException], ...] = (typer.Exit, typer.Abort, *CLICK_ERRORS)
_CTX, _CONFIG = "ctx", "config"


@dataclass(frozen=True)
class _Group:
    """One option-group parameter of a command: its name, dataclass and field names."""

    param: str
    cls: type[OptionGroup]
    fields: tuple[str, ...]

    def pack(self, values: dict[str, Any]) -> OptionGroup:
        """The dataclass filled from (and taking its fields out of) ``values``."""
        return self.cls(**{name: values.pop(name) for name in self.fields})


def _is_group(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, OptionGroup) and dataclasses.is_dataclass(hint)


def _field_params(cls: type[OptionGroup]) -> list[inspect.Parameter]:
    """The group's fields as keyword parameters: their ``Annotated[..., typer.Option]`` and defaults."""
    hints = typing.get_type_hints(cls, include_extras=True)
    params = []
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]  # a dataclass: _is_group checked it
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            raise TypeError(f"{cls.__name__}.{f.name}: an option group's fields need defaults.")
        params.append(
            inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=hints[f.name])
        )
    return params


def _expand(fn: Command) -> tuple[inspect.Signature, list[_Group]]:
    """The signature typer reads (groups spread into fields, then ctx and --config), and the groups."""
    hints = typing.get_type_hints(fn, include_extras=True)
    params: list[inspect.Parameter] = []
    groups: list[_Group] = []
    for p in inspect.signature(fn).parameters.values():
        hint = hints.get(p.name, p.annotation)
        if _is_group(hint):
            fields = _field_params(hint)
            groups.append(_Group(p.name, hint, tuple(f.name for f in fields)))
            params += fields
        else:
            params.append(p.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=hint))
    params.append(inspect.Parameter(_CTX, inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context))
    params.append(inspect.Parameter(_CONFIG, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ConfigPath))
    names = [p.name for p in params]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise TypeError(f"{fn.__name__}: options declared twice: {', '.join(repeated)}.")
    return inspect.Signature(params, return_annotation=None), groups


def command(fn: Command) -> Command:
    """Make ``fn`` a command: spread its option groups into flags, add ``--config``, guard errors.

    ``fn`` takes plain typer parameters and :class:`OptionGroup` dataclasses; the returned
    function is what typer registers.
    """
    signature, groups = _expand(fn)

    def run(**values: Any) -> None:
        ctx: typer.Context = values.pop(_CTX)
        config = values.pop(_CONFIG)
        if config is not None:
            values.update(merge_config(ctx, config, values))
        if values.get("quiet"):
            quiet_libraries()
        packed = {g.param: g.pack(values) for g in groups}
        fn(**values, **packed)

    guarded = _guard(run)
    guarded.__name__, guarded.__qualname__ = fn.__name__, fn.__qualname__
    guarded.__module__, guarded.__doc__ = fn.__module__, fn.__doc__
    guarded.__signature__ = signature  # type: ignore[attr-defined]
    # typer also reads the annotations: give it the resolved ones, not fn's strings.
    guarded.__annotations__ = {p.name: p.annotation for p in signature.parameters.values()}
    return guarded


def _guard(fn: Command) -> Command:
    """Turn any exception a command raises into one red line on stderr and exit code 1."""

    def guarded(**kwargs: Any) -> None:
        try:
            fn(**kwargs)
        except _PASS_THROUGH:
            raise
        except KeyboardInterrupt:
            err_console.print("[red]Interrupted.[/]")
            raise typer.Exit(130) from None
        except EndpointError as exc:  # bad input: the URL, key variable or model name is wrong
            print_error(str(exc))
            raise typer.Exit(2) from None
        except Exception as exc:  # noqa: BLE001 - the CLI's contract: a message, not a traceback
            if os.environ.get("AMPLIFY_AGENTS_DEBUG"):
                traceback.print_exc()
            print_error(f"{type(exc).__name__}: {exc}")
            raise typer.Exit(1) from None

    return guarded


def print_error(message: str) -> None:
    """``Error: message`` on stderr as ONE line: inner line breaks are joined, and the console
    does not wrap it at the terminal's width (a script reading stderr gets one line)."""
    err_console.print(Text.assemble(("Error: ", "bold red"), " ".join(message.split())), soft_wrap=True)


# click's classes, from the copy typer ships (never `import click`: it may be another version).
_CLICK_ERROR: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
_USAGE_ERROR: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


class OneLineErrors(TyperGroup):
    """The app's command group: a usage error is one line and exit code 2, not a 5-line box.

    Typer prints click's usage errors as a usage line, a hint and a boxed message. This group
    runs the commands with ``standalone_mode=False`` (click then raises the error instead of
    printing it) and prints ``Error: <message> (see amplify-agents build --help)``.
    """

    def main(  # type: ignore[override]  # click's signature, with its defaults
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the CLI; in standalone mode (the console script) exit with its code."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except _CLICK_ERROR as exc:
            sys.exit(_report_click_error(exc))
        except typer.Abort:
            print_error("Aborted.")
            sys.exit(1)
        except Exception as exc:  # noqa: BLE001 - e.g. an option parser failing: still one line
            if os.environ.get("AMPLIFY_AGENTS_DEBUG"):
                traceback.print_exc()
            print_error(f"{type(exc).__name__}: {exc}")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def _report_click_error(exc: Exception) -> int:
    """Print a click error as one line; return its exit code."""
    code = int(getattr(exc, "exit_code", 1))
    if type(exc).__name__ == "NoArgsIsHelpError":
        return code  # typer printed the help already
    message = exc.format_message()  # type: ignore[attr-defined]  # a ClickException
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, _USAGE_ERROR) and ctx is not None:
        message = f"{' '.join(message.split()).rstrip()} (see {ctx.command_path} --help)"
    print_error(message)
    return code
