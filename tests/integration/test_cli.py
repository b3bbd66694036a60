"""The ``amplify-agents`` command line, through typer's CliRunner, on real parts.

Every command runs once on a tiny store (sports_understanding, offline MiniLM and Gemma);
bad arguments must give a non-zero exit code and a clear message, never a traceback.
The session's Gemma is handed to the CLI's model cache, so it is loaded once.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from amplify_agents import cli
from amplify_agents.cli import app
from amplify_agents.stores import RationaleStore

pytestmark = pytest.mark.slow

runner = CliRunner()


def _flat(text: str) -> str:
    """Output without box drawing and line wrapping, for substring checks."""
    return " ".join(re.sub(r"[│╭╮╰╯─━┃┏┓┗┛┡┩└┘┌┐╇┳┻╋├┤]", " ", text).split())


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


@pytest.fixture(autouse=True)
def _shared_gemma(monkeypatch, request):
    """Give the CLI the session's Gemma (tests that never need it do not load it)."""
    if "gemma" in request.fixturenames:
        monkeypatch.setitem(cli._SLM_CACHE, ("gemma-3-270m", None), request.getfixturevalue("gemma"))


@pytest.fixture(scope="module")
def task_dir(bigbench_dir: Path) -> Path:
    return bigbench_dir / "sports_understanding"


@pytest.fixture(scope="module")
def built(tmp_path_factory, task_dir: Path) -> dict[str, object]:
    """A store built by `build` with a --config file (and one flag overriding it)."""
    root = tmp_path_factory.mktemp("cli")
    config = root / "amplify.toml"
    config.write_text(
        f'store_dir = "{root / "chroma"}"\nname = "cli-sports"\nseed = 0\n'
        '[build]\npredictor = "proxy"\nexplainer = "grad_x_input"\nproxy-epochs = 0\n'
        "n = 4\nk = 2\npool = 12\ntest = 20\n",
        encoding="utf-8",
    )
    code, out = invoke("build", task_dir, "--config", config, "--k", "3", "--quiet")
    assert code == 0, out
    store = RationaleStore.local("cli-sports", root / "chroma")
    return {
        "root": root,
        "dir": root / "chroma",
        "config": config,
        "out": out,
        "store": store,
        "task": task_dir,
    }


def test_help_reads_well() -> None:
    code, out = invoke("--help")
    assert code == 0
    for command in ("build", "select", "eval", "improve", "inspect", "export", "import", "demo"):
        assert command in out
        sub_code, sub_out = invoke(command, "--help")
        assert sub_code == 0 and "Usage" in sub_out and "--config" in sub_out
    assert "Exit codes" in _flat(out)
    code, out = invoke()
    assert code in (0, 2) and "Usage" in out  # no arguments: the help


def test_build_from_config_with_a_flag_override(built) -> None:
    store: RationaleStore = built["store"]  # type: ignore[assignment]
    out = _flat(str(built["out"]))
    assert "stored (new)" in out and "held out 20 test item(s)" in out
    demos = store.list()
    assert len(demos) == 4  # n from the [build] table
    assert {d.explainer for d in demos} == {"grad_x_input"} and {d.strategy for d in demos} == {"error"}
    assert {d.k for d in demos} == {3}  # --k on the command line wins over k = 2 in the file
    assert {d.label for d in demos} == {"plausible", "implausible"}
    # Re-running the same build adds nothing (resumable, idempotent).
    code, again = invoke("build", built["task"], "--config", built["config"], "--k", "3", "-q")
    assert code == 0 and store.count() == 4 and "already stored" in _flat(again)


def test_select_prints_the_selectors_demonstrations(built) -> None:
    store: RationaleStore = built["store"]  # type: ignore[assignment]
    query = "Tom Brady threw a touchdown pass"
    code, out = invoke("select", built["dir"], "--name", "cli-sports", "--query", query, "--k", "2", "--json")
    assert code == 0, out
    picked = json.loads(out)
    assert len(picked) == 2 and {d["demo_id"] for d in picked} <= {d.demo_id for d in store.list()}
    code, table = invoke("select", built["dir"], "-n", "cli-sports", "-Q", query, "--k", "2", "--prompt")
    assert code == 0
    for d in picked:
        assert d["demo_id"][:12] in table and d["label"] in table
    assert table.rstrip().endswith("A:")  # the prompt ends where the answer starts


def test_inspect_statistics_and_explain_heatmaps(built, tmp_path: Path) -> None:
    store: RationaleStore = built["store"]  # type: ignore[assignment]
    code, out = invoke("inspect", built["dir"], "--name", "cli-sports", "--sample", "2")
    flat = _flat(out)
    assert code == 0, out
    assert "4 demonstration(s)" in flat
    for title in ("per label", "per explainer", "per strategy", "sample"):
        assert title in flat
    assert "grad_x_input 4 100%" in flat

    demo = store.list()[0]
    html, png = tmp_path / "exp.html", tmp_path / "exp.png"
    code, out = invoke(
        "inspect",
        built["dir"],
        "-n",
        "cli-sports",
        "--explain",
        demo.demo_id[:10],
        "--html",
        html,
        "--png",
        png,
        "--task-file",
        built["task"],
        "--proxy-epochs",
        "0",
    )
    assert code == 0, out
    page = html.read_text(encoding="utf-8")
    assert all(f">{w}</span>" in page for w in demo.input.split() if w.isalnum())
    assert png.stat().st_size > 1000 and "keywords now" in out
    # With no task file, the label space comes from the store; another explainer can be asked for.
    code, out = invoke("inspect", built["dir"], "-n", "cli-sports", "--explain", demo.demo_id, "--explainer", "random")
    assert code == 0 and "random" in out


def test_export_and_import_round_trip(built, tmp_path: Path) -> None:
    store: RationaleStore = built["store"]  # type: ignore[assignment]
    path = tmp_path / "demos.jsonl"
    code, out = invoke("export", built["dir"], "--name", "cli-sports", "--out", path)
    assert code == 0 and "exported 4" in out
    assert len(path.read_text(encoding="utf-8").splitlines()) == 4
    code, out = invoke("import", tmp_path / "copy", "--name", "cli-copy", "--in", path)
    assert code == 0 and "imported 4" in _flat(out)
    copy = RationaleStore.local("cli-copy", tmp_path / "copy")
    assert sorted(d.demo_id for d in copy.list()) == sorted(d.demo_id for d in store.list())


def test_eval_prints_the_summary_and_writes_results(task_dir: Path, tmp_path: Path, gemma) -> None:
    out_dir = tmp_path / "eval"
    config = tmp_path / "eval.toml"
    # Lists and scalars for repeatable options: `seed = 0` is one seed.
    config.write_text('seed = 0\n[eval]\nmethod = ["zero-shot", "io"]\nn-shot = 2\n', encoding="utf-8")
    code, out = invoke(
        "eval",
        task_dir,
        "--config",
        config,
        "--test-size",
        "4",
        "--pool-size",
        "8",
        "--out-dir",
        out_dir,
        "-q",
    )
    assert code == 0, out
    flat = _flat(out)
    assert "zero-shot" in flat and "io" in flat and "computed 2 run(s)" in flat and "2-shot" in flat
    assert (out_dir / "results.json").exists() and (out_dir / "results.png").stat().st_size > 1000


def test_improve_runs_rounds_and_plots(task_dir: Path, tmp_path: Path, gemma) -> None:
    plot = tmp_path / "rounds.png"
    code, out = invoke(
        "improve",
        task_dir,
        "--store-dir",
        tmp_path / "chroma",
        "--name",
        "cli-improve",
        "--explainer",
        "random",
        "--validation",
        "4",
        "--test",
        "20",
        "--rounds",
        "1",
        "--n-per-round",
        "2",
        "--k",
        "2",
        "--plot",
        plot,
        "-q",
    )
    assert code == 0, out
    flat = _flat(out)
    assert "improve: sports_understanding" in flat and "best round" in flat
    assert plot.stat().st_size > 1000
    assert (tmp_path / "chroma" / "cli-improve.improve-history.json").exists()


def test_demo_runs_end_to_end(task_dir: Path, gemma) -> None:
    code, out = invoke(
        "demo",
        "--task",
        task_dir,
        "--pool",
        "8",
        "--n",
        "2",
        "--shots",
        "2",
        "--query",
        "Juan Soto hit a home run",
        "-q",
    )
    assert code == 0, out
    flat = _flat(out)
    assert "answer:" in flat and "Statement: Juan Soto hit a home run" in out
    assert "demonstrations selected" in flat


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["build", "/no/such/task.json", "-d", "{tmp}", "-n", "x-store"], "task file not found"),
        (
            ["build", "{task}", "-d", "{tmp}", "-n", "x-store", "--explainer", "nope"],
            "unknown explainer 'nope'",
        ),
        (
            ["build", "{task}", "-d", "{tmp}", "-n", "x-store", "--strategy", "best"],
            "unknown strategy 'best'",
        ),
        (["build", "{task}", "-d", "{tmp}", "-n", "x-store", "--predictor", "oracle"], "unknown predictor"),
        (["build", "{task}", "-d", "{tmp}", "-n", "langchain"], "is refused"),
        (["build", "{task}", "-d", "{tmp}", "-n", "x-store", "--n", "many"], "Invalid value for '--n'"),
        (["build", "{task}", "-d", "{tmp}", "-n", "x-store", "--config", "/no/such.toml"], "does not exist"),
        (["select", "{tmp}/none", "-n", "x-store", "-Q", "hi"], "no store directory"),
        (["select", "{dir}", "-n", "x-store", "-Q", "hi"], "no store named 'x-store'"),
        (["select", "{dir}", "-n", "cli-sports"], "query is required"),
        (["eval", "{task}", "--method", "bogus"], "Unknown method 'bogus'"),
        (["eval", "{task}", "--method", "io", "--demo-setting", "sometimes"], "unknown demo setting"),
        (["eval", "{task}", "--method", "io+calibrate"], "Unknown modifier 'calibrate'"),
        (["eval", "{task}", "--method", "io", "--select-on", "train"], "unknown selection split 'train'"),
        (
            ["eval", "{task}", "--select-on", "validation", "--validation-size", "950", "--test-size", "100"],
            "leave no demo pool",
        ),
        (["improve", "{task}", "-d", "{tmp}", "-n", "x-store", "--strategy", "random"], "unknown strategy"),
        (["inspect", "{dir}", "-n", "cli-sports", "--explain", "zzzz"], "no demonstration with id 'zzzz'"),
        (["inspect", "{dir}", "-n", "cli-sports", "--html", "x.html"], "need --explain"),
        (
            ["inspect", "{dir}", "-n", "cli-sports", "--explain", "zzzz", "--explainer", "magic"],
            "unknown explainer",
        ),
        (["export", "{dir}", "-n", "cli-sports"], "output file is required"),
        (["import", "{tmp}", "-n", "x-store", "--in", "/no/such.jsonl"], "file not found"),
        (["import", "{tmp}", "-n", "x-store", "--in", "{bad}"], "not a valid demonstration"),
        (["demo", "--task", "/no/such/dir"], "task file not found"),
        (["frobnicate"], "No such command"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(args, message, built, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"not": "a demonstration"}\n', encoding="utf-8")
    values = {"tmp": tmp_path, "task": built["task"], "dir": built["dir"], "bad": bad}
    code, out = invoke(*[a.format(**values) for a in args])
    assert code == 2, out
    assert message in _flat(out)
    assert "Traceback" not in out


def test_bad_config_keys_exit_2(built, tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[build]\nexplainers = "random"\n', encoding="utf-8")
    code, out = invoke("build", built["task"], "--config", config)
    assert code == 2 and "unknown key 'explainers'" in _flat(out)
    config.write_text("nonsense_key = 1\n", encoding="utf-8")
    code, out = invoke("inspect", built["dir"], "--config", config)
    assert code == 2 and "unknown key 'nonsense_key'" in _flat(out)
    config.write_text('[build]\nn = "eight"\n', encoding="utf-8")
    code, out = invoke("build", built["task"], "--config", config)
    assert code == 2 and "eight" in _flat(out)


def test_runtime_failure_exits_1_with_a_message_not_a_traceback(built, monkeypatch, gemma) -> None:
    from amplify_agents.builder import DemonstrationBuilder

    def boom(self, examples=None):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(DemonstrationBuilder, "run", boom)
    code, out = invoke("build", built["task"], "-d", built["dir"], "-n", "cli-sports", "--explainer", "random", "-q")
    assert code == 1
    assert "Error: RuntimeError: the disk is full" in _flat(out) and "Traceback" not in out
