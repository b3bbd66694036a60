"""``--config file.toml``: option values from a file; the command line wins.

Top-level keys apply to every command that has that option, a ``[build]`` (``[eval]``, ...)
table to one command only; keys are the option names (``store_dir`` or ``store-dir``). A key
no command knows, or a table's key its command does not take, is bad input (exit 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from amplify_agents.cli.common import bad

__all__ = ["CLICK_ERRORS", "merge_config"]

# Typer ships its own copy of click: take click's classes from typer, never `import click`.
CLICK_ERRORS: tuple[type[BaseException], ...] = tuple(
    c for c in typer.BadParameter.__mro__ if c.__name__ in ("ClickException",)
)
_NOT_KEYS = ("ctx", "config")


def merge_config(ctx: typer.Context, config: Path, values: dict[str, Any]) -> dict[str, Any]:
    """The values ``config`` gives for the options left at their default in ``values``.

    Each value goes through its option's own conversion and checks (an Enum choice, a range,
    a path), so a value from the file is refused exactly as on the command line.
    """
    data = _read_toml(config)
    params = {p.name: p for p in ctx.command.params if p.name and p.name not in _NOT_KEYS}
    chosen = _chosen(ctx, config, data, params)
    out: dict[str, Any] = {}
    for name, (value, key) in chosen.items():
        source = ctx.get_parameter_source(name)
        if name not in values or (source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")):
            continue  # the command line (or the environment) wins
        param = params[name]
        try:
            if isinstance(value, list) and not param.multiple:
                raise typer.BadParameter("a list is not allowed here")
            if param.multiple and not isinstance(value, list):
                value = [value]  # `seed = 0` for an option that takes several
            converted = param.process_value(ctx, value)
        except CLICK_ERRORS as exc:
            message = getattr(exc, "message", str(exc))
            raise bad(f"{config}: {key} = {value!r}: {message}", "--config") from None
        out[name] = list(converted) if param.multiple else converted
    return out


def _read_toml(config: Path) -> dict[str, Any]:
    if not config.is_file():
        raise bad(f"config file {config} does not exist.", "--config")
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the same parser, as a package
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        return tomllib.loads(config.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise bad(f"{config} is not valid TOML: {exc}", "--config") from None


def _chosen(
    ctx: typer.Context, config: Path, data: dict[str, Any], params: dict[str, Any]
) -> dict[str, tuple[Any, str]]:
    """Option name -> (value, key as written) for this command; a ``[command]`` table wins over top-level keys."""
    command = ctx.info_name or ""
    root = ctx.find_root().command
    commands: dict[str, Any] = dict(getattr(root, "commands", {}))
    known_anywhere = {p.name for cmd in commands.values() for p in cmd.params if p.name}
    chosen: dict[str, tuple[Any, str]] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            if key not in commands:
                raise bad(
                    f"{config}: unknown table [{key}]; tables are named after commands: {', '.join(sorted(commands))}.",
                    "--config",
                )
            continue
        name = key.replace("-", "_")
        if name in params:
            chosen[name] = (value, key)
        elif name not in known_anywhere:
            raise bad(f"{config}: unknown key {key!r}.", "--config")
    for key, value in (data.get(command) or {}).items():
        name = key.replace("-", "_")
        if name not in params:
            raise bad(
                f"{config}: [{command}] has unknown key {key!r}; valid keys: {', '.join(sorted(params))}.", "--config"
            )
        chosen[name] = (value, f"{command}.{key}")
    return chosen
