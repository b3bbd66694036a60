"""eval, build and the chain against llama.cpp's real OpenAI-compatible server (started by the tests).

The same command runs against the endpoint and against the local transformers copy of the
same Gemma GGUF: their predictions agree (Q4 weights on the server, de-quantised ones here).
`build` with the endpoint as the target selects demonstrations by *that* target's errors.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from pathlib import Path

import pytest
from typer.testing import CliRunner

from amplify_agents import cli
from amplify_agents.answering import Answerer, AnswerSettings, Endpoint, open_endpoint
from amplify_agents.chains import create_amplify_chain
from amplify_agents.cli import app
from amplify_agents.framing import Frame
from amplify_agents.predictors import TargetPredictor, predict_pool
from amplify_agents.prompts import PromptStyle
from amplify_agents.stores import RationaleStore
from amplify_agents.tasks import load_task

try:
    from .llama_server import LlamaServer, free_port
except ImportError:
    from llama_server import LlamaServer, free_port

pytestmark = pytest.mark.slow

ANIMALS = ["a cat slept on the mat", "the dog barked loudly", "a horse galloped away", "the cow gave milk"]
ANIMALS += ["a small bird sang", "the fox hid in bushes", "a rabbit ate carrots", "the sheep grazed"]
ANIMALS += ["an owl hooted at night", "the goat climbed rocks", "a duck swam in the pond", "the mouse ran off"]
VEHICLES = ["a bus stopped at the corner", "the truck carried boxes", "a bicycle leaned on a wall"]
VEHICLES += ["the train arrived late", "a taxi honked loudly", "the tractor plowed", "a scooter zipped by"]
VEHICLES += ["the ferry crossed the bay", "a plane landed", "the van parked", "a motorcycle roared", "the tram rattled"]
SECRET = "sk-test-never-written-anywhere-1234"


@pytest.fixture(autouse=True)
def _shared_gemma(monkeypatch: pytest.MonkeyPatch, gemma) -> None:
    monkeypatch.setitem(cli._SLM_CACHE, ("gemma-3-270m", None), gemma)
    monkeypatch.setenv("AMPLIFY_TEST_KEY", SECRET)


@pytest.fixture(scope="module")
def task_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hosted") / "kinds.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["input", "label"])
        writer.writerows(
            [(f"Note: {s}.", "creature") for s in ANIMALS] + [(f"Note: {s}.", "machine") for s in VEHICLES]
        )
    return path


def _run(*args: object, code: int = 0) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args])
    if code == 0 and result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == code, result.output
    return result.output


def _margins(out_dir: Path) -> dict[tuple[str, str], float]:
    """log p(creature) - log p(machine) per (method, item) of an eval run, where both labels were read
    exactly (zero-shot, a label may fall outside the server's top-k: a bound, or the item is parsed)."""
    runs = json.loads((out_dir / "results.json").read_text())["runs"].values()
    return {
        (run["method"], it["id"]): math.log(it["probs"]["creature"]) - math.log(it["probs"]["machine"])
        for run in runs
        for it in run["items"]
        if it["probs"] and not it.get("outside_top_k")
    }


def test_eval_against_the_endpoint_agrees_with_the_local_model(
    llama_server: LlamaServer, task_file: Path, tmp_path: Path
) -> None:
    common = ["eval", task_file, "-m", "zero-shot", "-m", "io", "--test-size", "10", "--pool-size", "12"]
    common += ["--n-shot", "4", "--no-plot", "--quiet"]
    hosted_dir, local_dir = tmp_path / "hosted", tmp_path / "local"
    _run(
        *common,
        "--out-dir",
        hosted_dir,
        "--base-url",
        llama_server.base_url,
        "--model",
        llama_server.model,
        "--api-key-env",
        "AMPLIFY_TEST_KEY",
        "--concurrency",
        "1",
    )
    _run(*common, "--out-dir", local_dir)
    hosted, local = _margins(hosted_dir), _margins(local_dir)
    pairs = [(hosted[key], local[key]) for key in local if key in hosted]
    assert len(local) == 20 and len(pairs) >= 10, (len(local), len(pairs))
    # Gemma 270M is near chance here, so many items are close calls that Q4 rounding (the server)
    # may flip; the margins must still move together, and every confident local call must agree.
    print(f"hosted vs local, {len(pairs)} items read exactly: {[(round(h, 2), round(v, 2)) for h, v in pairs]}")
    assert statistics.correlation([h for h, _ in pairs], [loc for _, loc in pairs]) > 0.6
    confident = [(h, loc) for h, loc in pairs if abs(loc) > 1.0]
    assert all((h > 0) == (loc > 0) for h, loc in confident), confident
    runs = json.loads((hosted_dir / "results.json").read_text())["runs"].values()
    assert all(r["backend"]["endpoint"] == llama_server.base_url for r in runs)
    assert all(r["backend"]["backend"] == "openai-completions" for r in runs)
    for written in hosted_dir.iterdir():  # the key is never written to results or the cache
        assert SECRET.encode() not in written.read_bytes(), written


def test_build_selects_by_the_hosted_targets_errors(llama_server: LlamaServer, task_file: Path, tmp_path: Path) -> None:
    store_dir = tmp_path / "chroma"
    _run(
        "build",
        task_file,
        "-d",
        store_dir,
        "-n",
        "hosted",
        "--base-url",
        llama_server.base_url,
        "--model",
        llama_server.model,
        "--concurrency",
        "1",
        "--strategy",
        "error",
        "--explainer",
        "random",
        "--n",
        "4",
        "--test",
        "4",
        "--quiet",
    )
    task = load_task(task_file)
    pool = task.split(seed=0, test=4).pool
    backend = open_endpoint(Endpoint(llama_server.base_url, llama_server.model, concurrency=1))
    predictor = TargetPredictor(Answerer(backend, AnswerSettings(PromptStyle(Frame.from_task(task)))), task.labels)
    wrong = {p.example.id for p in predict_pool(predictor, list(pool)) if not p.correct}
    demos = RationaleStore.local("hosted", store_dir).list()
    assert demos
    for d in demos:  # each is an error of the endpoint's model, or a flagged label-balance fill
        assert d.example_id in wrong or d.scores.get("balance_fill"), (d.example_id, d.scores)
        assert json.loads(d.extra["target"])["endpoint"] == llama_server.base_url


def test_bad_endpoints_are_one_line_errors_with_exit_code_2(llama_server: LlamaServer, task_file: Path) -> None:
    base = ["eval", task_file, "-m", "io", "--test-size", "4", "--no-plot", "--quiet", "--model", llama_server.model]
    nowhere = f"http://127.0.0.1:{free_port()}/v1"
    out = _run(*base, "--base-url", nowhere, code=2)
    assert nowhere in out
    out = _run(*base, "--base-url", llama_server.base_url, "--api-key-env", "AMPLIFY_UNSET_KEY_VAR", code=2)
    assert "AMPLIFY_UNSET_KEY_VAR" in out
    out = _run(*base[:-1], "no-such-model", "--base-url", llama_server.base_url, code=2)
    assert "no-such-model" in out and llama_server.model in out


def test_chain_hosted_endpoint_route_returns_label_probabilities(llama_server: LlamaServer) -> None:
    # Demonstrations in the instruction put both labels among the server's top log-probabilities
    # (zero-shot, Gemma 270M continues with " a": neither label scored, the answer unparseable).
    shots = "\nQ: a dog barked at the postman\nA: creature\n\nQ: a robot welded the car door\nA: machine\n"
    frame = Frame(instruction="Is it a creature or a machine?\n" + shots, input_prefix="\nQ: ", output_prefix="\nA:")
    chain = create_amplify_chain(
        None,
        labels=["creature", "machine"],
        frame=frame,
        hosted=Endpoint(llama_server.base_url, llama_server.model, concurrency=1),
    )
    result = chain.invoke("a cat slept on the mat")
    assert result.route == "hosted" and result.answer in ("creature", "machine")
    assert result.label_probs is not None and abs(sum(result.label_probs.values()) - 1) < 1e-6
