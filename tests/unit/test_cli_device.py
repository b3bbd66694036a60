"""``--device`` (issue 19): one option on every command that loads a model, reaching every model it loads.

The checks run before anything loads: a bad value, or ``cuda`` on a machine without one, is
one line and exit code 2. Where it goes is checked with CUDA faked visible and the loaders
replaced (they record the device and stop the command); one test runs ``inspect --explain``
for real with ``--device auto`` (an untrained MiniLM proxy, on the CPU where no GPU is).
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import torch
import typer
from typer.testing import CliRunner

from amplify_agents import cli
from amplify_agents.cli import app
from amplify_agents.cli.common import check_device, make_explainer
from amplify_agents.cli.options import ProxyTrainingOptions
from amplify_agents.tasks import Task

runner = CliRunner()
# By module: the package's ``build`` is the command function, which hides the module of that name.
MODULES = {
    name: importlib.import_module(f"amplify_agents.cli.{name}")
    for name in ("common", "build", "eval", "improve", "demo")
}
LOADING = ("build", "eval", "improve", "demo", "inspect")
"""The commands that load a model (the small LM or a proxy); inspect only with --explain."""
STOPPED = 42
"""The exit code of a replaced loader: the command got as far as loading, with the recorded device."""


def invoke(*args: Any) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def _flat(text: str) -> str:
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


@pytest.fixture
def task_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.jsonl"
    rows = [{"input": f"statement number {i} reads well", "label": "yes"} for i in range(12)]
    rows += [{"input": f"statement number {i} reads badly", "label": "no"} for i in range(12)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def _command_lines(tmp: Path, task: Path, device: str) -> dict[str, list[Any]]:
    """One runnable command line per loading command, with ``--device device``."""
    return {
        "build": ["build", task, "-d", tmp / "chroma", "-n", "dev", "--test", "4", "-q", "--device", device],
        "eval": ["eval", task, "--test-size", "4", "-m", "zero-shot", "--out-dir", tmp / "ev", "--device", device],
        "improve": ["improve", task, "-d", tmp / "chroma", "-n", "dev", "--explainer", "random", "--validation", "4"]
        + ["--test", "4", "-q", "--device", device],
        "demo": ["demo", "--task", task, "--pool", "8", "-q", "--device", device],
        "inspect": ["inspect", tmp / "chroma", "-n", "dev", "--explain", "abc", "--device", device],
    }


# ----------------------------------------------------------------------------- the option
def test_every_command_that_loads_a_model_has_device_with_its_default() -> None:
    for command in LOADING:
        code, out = invoke(command, "--help")
        assert code == 0, out
        found = re.search(r"--device DEVICE (.*?)\[default: ([^\]]+)\]", _flat(out))
        assert found is not None and " --" not in found.group(1), out
        assert found.group(2) == "cpu"
        assert "cpu, cuda, cuda:N" in found.group(1) and "auto" in found.group(1)
    for command in ("select", "export", "import"):  # they load no model (the store's embeddings stay on CPU)
        assert "--device" not in invoke(command, "--help")[1]


@pytest.mark.parametrize("value", ["gpu", "cuda:x", "cuda:", "cpu0", "mps"])
@pytest.mark.parametrize("command", LOADING)
def test_a_bad_device_is_one_line_naming_the_accepted_values(command: str, value: str, tmp_path: Path) -> None:
    code, out = invoke(*_command_lines(tmp_path, tmp_path / "missing.jsonl", value)[command])
    assert code == 2, out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1 and f"unknown device {value!r}" in lines[0], out
    assert "valid: cpu, cuda, cuda:N" in lines[0] and "auto" in lines[0]


def test_a_bad_device_from_config_is_refused_alike(tmp_path: Path, task_file: Path) -> None:
    config = tmp_path / "amplify.toml"
    config.write_text('device = "gpu"\n', encoding="utf-8")
    code, out = invoke("eval", task_file, "--config", config)
    assert code == 2 and "device = 'gpu'" in out and "valid: cpu, cuda, cuda:N" in _flat(out)


@pytest.fixture
def no_loading(monkeypatch) -> None:
    """Any model load fails the test (the CLI's loaders, in every module that imported them)."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"a model was loaded: {args} {kwargs}")

    for module in MODULES.values():
        monkeypatch.setattr(module, "load_slm", refuse)
    monkeypatch.setattr("amplify_agents.explainers.registry.create_proxy", refuse)
    monkeypatch.setattr("amplify_agents.models.proxy.ProxyClassifier.load", refuse)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("command", LOADING)
def test_cuda_without_a_gpu_fails_before_loading(command: str, tmp_path: Path, task_file: Path, no_loading) -> None:
    cached = dict(cli._SLM_CACHE)  # other tests in the same process may have loaded models before
    code, out = invoke(*_command_lines(tmp_path, task_file, "cuda")[command])
    assert code == 2, out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out
    assert "no CUDA device is visible" in lines[0] and "use --device cpu or --device auto" in lines[0]
    assert cli._SLM_CACHE == cached and not (tmp_path / "chroma").exists()  # nothing loaded, no store made


def test_check_device_maps_the_values_to_the_librarys(monkeypatch) -> None:
    assert check_device("cpu") is None  # the library's default: the CPU behaviour is unchanged
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert check_device("auto") is None
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert (check_device("auto"), check_device("cuda"), check_device("cuda:1")) == ("cuda", "cuda", "cuda:1")
    with pytest.raises(typer.BadParameter, match=r"only 2 CUDA device\(s\) are visible"):
        check_device("cuda:2")


# ------------------------------------------------------------------- where the device goes
def _two_examples() -> Task:
    return Task.from_records([{"input": "a b", "label": "yes"}, {"input": "c d", "label": "no"}], name="t")


@pytest.fixture
def fake_cuda(monkeypatch) -> list[tuple[str, Any]]:
    """CUDA looks visible (two devices); the loaders record (what, device) and stop the command."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    seen: list[tuple[str, Any]] = []

    def slm(name: str, device: str | None = None) -> Any:
        seen.append(("slm", device))
        raise typer.Exit(STOPPED)

    for module in MODULES.values():
        monkeypatch.setattr(module, "load_slm", slm)
    return seen


@pytest.mark.parametrize("command", ["build", "eval", "improve", "demo"])
def test_the_device_reaches_the_small_lm(command: str, tmp_path: Path, task_file: Path, fake_cuda) -> None:
    code, out = invoke(*_command_lines(tmp_path, task_file, "cuda:1")[command])
    assert code == STOPPED, out
    assert fake_cuda == [("slm", "cuda:1")]


def test_eval_puts_the_device_in_its_config(monkeypatch, tmp_path: Path, task_file: Path, fake_cuda) -> None:
    eval_module = MODULES["eval"]
    configs: list[Any] = []
    real = eval_module._eval_config
    monkeypatch.setattr(eval_module, "_eval_config", lambda *a, **kw: configs.append(real(*a, **kw)) or configs[-1])
    code, out = invoke(*_command_lines(tmp_path, task_file, "auto")["eval"])
    assert code == STOPPED, out
    assert configs[0].device == "cuda" and fake_cuda == [("slm", "cuda")]  # the harness's proxies read cfg.device


def test_make_explainer_puts_the_slm_and_the_proxy_on_the_device(monkeypatch) -> None:
    calls: list[tuple[str, Any]] = []
    monkeypatch.setattr(MODULES["common"], "load_slm", lambda name, device=None: calls.append(("slm", device)))

    def proxy(kind: str, **kw: Any) -> str:
        calls.append(("proxy", kw["device"]))
        return "proxy"

    def explainer(name: str, **kw: Any) -> str:
        calls.append(("explainer", kw["proxy_device"]))
        return "explainer"

    monkeypatch.setattr("amplify_agents.explainers.registry.create_proxy", proxy)
    monkeypatch.setattr("amplify_agents.explainers.registry.create_explainer", explainer)
    task = _two_examples()
    common = dict(task=task, pool=task, k=2, seed=0, slm_name="m", proxy_epochs=0, device="cuda:1")
    assert make_explainer("grad_x_input", proxy_kind="classifier", **common) == ("explainer", "proxy")
    assert calls == [("proxy", "cuda:1"), ("explainer", "cuda:1")]
    calls.clear()
    make_explainer("grad_x_input", proxy_kind="causal_lm", **common)
    assert calls == [("slm", "cuda:1"), ("proxy", "cuda:1"), ("explainer", "cuda:1")]


def test_builds_classifier_proxy_is_trained_and_reloaded_on_the_device(monkeypatch, tmp_path: Path) -> None:
    calls: list[tuple[str, Any]] = []

    class Stub:
        training = None

        def save(self, folder: Path) -> None:
            folder.mkdir(parents=True)
            (folder / "amplify_proxy.json").write_text("{}")

    def create(kind: str, **kw: Any) -> Stub:
        calls.append(("create", kw["device"]))
        return Stub()

    def load(folder: Path, *, device: Any = None, progress: bool = True) -> Stub:
        calls.append(("load", device))
        return Stub()

    monkeypatch.setattr("amplify_agents.explainers.registry.create_proxy", create)
    monkeypatch.setattr("amplify_agents.models.proxy.ProxyClassifier.load", load)
    task = _two_examples()
    store = type("Store", (), {"name": "s"})()
    for _ in range(2):  # trained the first time, reloaded from beside the store the second
        MODULES["build"]._saved_proxy(store, tmp_path, task, task, 0, 0, ProxyTrainingOptions(), "cuda:1")  # type: ignore[arg-type]
    assert calls == [("create", "cuda:1"), ("load", "cuda:1")]


# ------------------------------------------------------------------------------ end to end
@pytest.mark.slow
def test_device_auto_runs_inspect_explain_for_real(monkeypatch, tmp_path: Path) -> None:
    """``inspect --explain`` with a proxy explainer: an untrained MiniLM proxy, on cuda if visible, else the CPU."""
    from amplify_agents.demonstrations import Demonstration
    from amplify_agents.explainers import registry
    from amplify_agents.stores import RationaleStore

    demo = Demonstration(
        input="Juan Soto hit a home run in the ninth inning", label="yes", rationale="", task="sports", k=3
    )
    RationaleStore.local("dev-auto", tmp_path / "chroma").add([demo])
    proxies: list[tuple[Any, Any]] = []
    real = registry.create_proxy

    def recording(*args: Any, **kwargs: Any) -> Any:
        proxy = real(*args, **kwargs)
        proxies.append((kwargs["device"], proxy))
        return proxy

    monkeypatch.setattr(registry, "create_proxy", recording)
    code, out = invoke(
        "inspect",
        tmp_path / "chroma",
        "-n",
        "dev-auto",
        "--explain",
        demo.demo_id[:8],
        "--explainer",
        "grad_x_input",
        "--labels",
        "yes,no",
        "--device",
        "auto",
    )
    assert code == 0, out
    flat = _flat(out)
    assert "keywords now" in flat and "grad_x_input" in flat
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    [(device, proxy)] = proxies
    assert device == (None if expected == "cpu" else "cuda")
    assert proxy.loaded.device.type == expected
    if expected == "cpu":
        assert "no CUDA device is visible; running on the CPU" in flat
