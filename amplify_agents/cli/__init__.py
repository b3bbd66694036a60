"""The ``amplify-agents`` command line: build, select, eval, improve, inspect, export, import, demo.

One module per command (or small group of commands); :mod:`~amplify_agents.cli.options`
declares the options several commands share, :mod:`~amplify_agents.cli.command` the decorator
that spreads option groups into flags and adds ``--config``, :mod:`~amplify_agents.cli.report`
the tables the commands print.

Every option can also come from ``--config file.toml``: top-level keys apply to every
command that has that option, a ``[build]`` (``[eval]``, ...) table to one command only;
keys are the option names (``store_dir`` or ``store-dir``). Options given on the command
line win over the file.

Exit codes: 0 success; 1 a runtime failure (the message says what failed); 2 bad usage
or bad input (an unknown option or value, a missing task file or store, an unknown
explainer, strategy or method). Errors are one clear message, never a traceback
(set ``AMPLIFY_AGENTS_DEBUG=1`` to see one).
"""

from collections.abc import Sequence

import typer

from amplify_agents.cli.build import build
from amplify_agents.cli.command import OneLineErrors

# The model cache is re-exported: tests hand the CLI their loaded model through cli._SLM_CACHE.
from amplify_agents.cli.common import _SLM_CACHE as _SLM_CACHE
from amplify_agents.cli.common import load_slm
from amplify_agents.cli.demo import demo_cmd
from amplify_agents.cli.eval import eval_cmd
from amplify_agents.cli.improve import improve_cmd
from amplify_agents.cli.store_cmds import export_cmd, import_cmd, inspect_cmd, select_cmd

__all__ = ["app", "load_slm", "main"]

app = typer.Typer(
    name="amplify-agents",
    help=(
        "AMPLIFY / Self-AMPLIFY from the command line: build rationale-annotated demonstrations "
        "into a Chroma store, retrieve them for a query, evaluate, improve from validation "
        "errors, and inspect what a store holds.\n\n"
        "Every option can also be set in a TOML file given with --config (keys = option names; "
        "a \\[command] table applies to one command). Exit codes: 0 ok, 1 runtime failure, 2 bad usage."
    ),
    epilog=(
        "Examples:\n\n"
        "amplify-agents demo\n\n"
        "amplify-agents build TASK.json -d chroma -n my-task --explainer grad_x_input --strategy h-mcs\n\n"
        "amplify-agents select chroma -n my-task -Q 'Juan Soto hit a home run' --k 4 --prompt\n\n"
        "amplify-agents inspect chroma -n my-task --explain ID_PREFIX --html exp.html --png exp.png"
    ),
    cls=OneLineErrors,  # usage errors are one line (the console script runs app() through it)
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,  # errors are one line, never a traceback
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

# In the order `amplify-agents --help` lists them.
app.command("build")(build)
app.command("select")(select_cmd)
app.command("eval")(eval_cmd)
app.command("improve")(improve_cmd)
app.command("inspect")(inspect_cmd)
app.command("export")(export_cmd)
app.command("import")(import_cmd)
app.command("demo")(demo_cmd)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` and return its exit code (for ``python -m`` and embedding)."""
    try:
        app(args=list(argv) if argv is not None else None, standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0
