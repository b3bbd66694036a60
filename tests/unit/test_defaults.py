"""The default configuration is the documented one, and every component reads it (issue 16)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from typer.testing import CliRunner

from amplify_agents import AmplifyExampleSelector, BuildConfig
from amplify_agents.cli import app
from amplify_agents.cli.build import BuildOptions
from amplify_agents.cli.eval import MethodOptions
from amplify_agents.cli.store_cmds import SelectorOptions
from amplify_agents.defaults import DEFAULTS
from amplify_agents.eval import EvalConfig
from amplify_agents.eval.methods import parse_method
from amplify_agents.explainers.base import Explainer
from amplify_agents.explainers.registry import create_explainer

README = Path(__file__).resolve().parents[2] / "README.md"


def _default(func: object, name: str) -> object:
    return inspect.signature(func).parameters[name].default  # type: ignore[arg-type]


def test_builder_selector_explainers_and_eval_share_the_defaults() -> None:
    assert BuildConfig().strategy == DEFAULTS.strategy and BuildConfig().n == DEFAULTS.demonstrations
    assert _default(AmplifyExampleSelector.__init__, "k") == DEFAULTS.shots
    assert _default(AmplifyExampleSelector.from_examples, "k") == DEFAULTS.shots
    assert _default(Explainer.__init__, "k") == DEFAULTS.keywords
    assert _default(create_explainer, "k") == DEFAULTS.keywords
    config = EvalConfig(task="any")
    assert (config.n_shot, config.k) == (DEFAULTS.shots, DEFAULTS.keywords)


def test_the_command_line_shares_the_defaults() -> None:
    build = BuildOptions()
    assert (build.explainer, build.strategy.value) == (DEFAULTS.explainer, DEFAULTS.strategy)
    assert (build.n, build.k) == (DEFAULTS.demonstrations, DEFAULTS.keywords)
    assert SelectorOptions().k == DEFAULTS.shots
    assert (MethodOptions().n_shot, MethodOptions().k) == (DEFAULTS.shots, DEFAULTS.keywords)
    # and says so in its help
    help_text = CliRunner().invoke(app, ["build", "--help"], env={"COLUMNS": "200"}).output
    assert re.search(rf"--k\b.*default: {DEFAULTS.keywords}\b", help_text)


def test_the_amplify_shorthand_is_the_default_configuration() -> None:
    spec = parse_method("amplify")
    assert spec.name == DEFAULTS.amplify_method
    assert (spec.kind, spec.explainer, spec.strategy) == ("amplify", DEFAULTS.explainer, DEFAULTS.strategy)
    assert parse_method("amplify+cal").name == DEFAULTS.amplify_method + "+cal"
    assert spec.placement == DEFAULTS.placement  # the shorthand lays demonstrations out as the library does


def test_the_readme_documents_the_defaults() -> None:
    text = README.read_text(encoding="utf-8")
    layout = (
        "(x, r, y), the rationale before the answer"
        if DEFAULTS.rationale_first
        else ("(x, y, r), the rationale after the answer")
    )
    documented = (
        f"`{DEFAULTS.explainer}` rationales of {DEFAULTS.keywords} keywords on `{DEFAULTS.strategy}`-selected "
        f"examples, {DEFAULTS.demonstrations} demonstrations built, {DEFAULTS.shots} per prompt, each laid "
        f"out {layout}"
    )
    assert documented in " ".join(text.split()), f"README should say: {documented}"
