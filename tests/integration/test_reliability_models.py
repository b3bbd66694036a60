"""Model weights that are silently wrong, and prompts longer than the model's context (issue #15).

Real parts only: the offline Gemma GGUF and its converted cache (copied into ``tmp_path``
before anything is corrupted; the shared cache is never written), the real scorer, the
answering path, the builder with a real Chroma store.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from amplify_agents.builder import BuildConfig, DemonstrationBuilder
from amplify_agents.errors import ContextLengthError, InputTooLongError, ModelCacheError, ModelNotAvailableError
from amplify_agents.explainers.captum_layer import GradXActivationExplainer
from amplify_agents.framing import Frame
from amplify_agents.models import LabelScorer, load_causal_lm, registry
from amplify_agents.models.kernel import make_rows, rows_label_logprobs
from amplify_agents.models.loading import default_cache_dir
from amplify_agents.models.proxy import ProxyClassifier
from amplify_agents.predictors import SLMPredictor, predict_pool
from amplify_agents.stores import RationaleStore, default_embeddings
from amplify_agents.tasks import Example, Task

LABELS = ("yes", "no")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _gguf() -> Path:
    return registry.resolve_offline("gemma-3-270m").locate(default_cache_dir())


def _flip_middle(path: Path, n: int = 4096) -> None:
    """Overwrite ``n`` bytes in the middle of ``path`` with their complement (size unchanged)."""
    with path.open("r+b") as fh:
        fh.seek(path.stat().st_size // 2)
        block = fh.read(n)
        fh.seek(-len(block), os.SEEK_CUR)
        fh.write(bytes(255 - b for b in block))


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * _PAGE


@contextmanager
def _peak_rss() -> Iterator[Callable[[], int]]:
    """The highest resident memory seen (sampled every 5 ms, at most 60 s) inside the block."""
    peak = [_rss()]
    done = threading.Event()

    def sample() -> None:
        for _ in range(12_000):  # bounded: 60 s of 5 ms samples
            peak[0] = max(peak[0], _rss())
            if done.wait(0.005):
                return

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield lambda: peak[0]
    finally:
        done.set()
        thread.join(5)


def _long_text(context: int) -> str:
    return "war " * (context + 500)  # one Gemma token per word: past the real context


# ------------------------------------------------------------------ weights
def test_truncated_gguf_fails_in_well_under_a_second_naming_the_file(tmp_path: Path) -> None:
    source = _gguf()
    cut = tmp_path / "half.gguf"
    with source.open("rb") as src, cut.open("wb") as dst:
        dst.write(src.read(source.stat().st_size // 2))
    t = time.perf_counter()
    with pytest.raises(ModelNotAvailableError, match="truncated") as info:
        load_causal_lm(cut, cache_dir=tmp_path / "cache")
    elapsed = time.perf_counter() - t
    assert str(cut) in str(info.value) and "Download or copy it again" in str(info.value)
    assert elapsed < 2.0, elapsed  # was a reshape error after a 9 s conversion
    assert not (tmp_path / "cache" / "converted").exists() or not any((tmp_path / "cache" / "converted").iterdir())


def test_offline_gguf_with_flipped_bytes_is_refused_before_conversion(tmp_path: Path) -> None:
    (tmp_path / "gguf").mkdir()
    copy = tmp_path / "gguf" / _gguf().name
    shutil.copy(_gguf(), copy)
    _flip_middle(copy)
    t = time.perf_counter()
    with pytest.raises(ModelCacheError, match="SHA-256 its package ships") as info:
        load_causal_lm("gemma-3-270m", cache_dir=tmp_path)
    assert f"Delete {copy}" in str(info.value)
    assert time.perf_counter() - t < 5.0  # a header read and one hash, no 50 s conversion
    assert not (tmp_path / "converted").exists() or not any(
        p.name.endswith("-float32") for p in (tmp_path / "converted").iterdir()
    )


def test_short_assembled_gguf_is_reassembled_from_the_package(tmp_path: Path) -> None:
    (tmp_path / "gguf").mkdir()
    short = tmp_path / "gguf" / _gguf().name
    with _gguf().open("rb") as src:
        short.write_bytes(src.read(1 << 20))  # what a killed assembly used to leave behind
    located = registry.resolve_offline("gemma-3-270m").locate(tmp_path)
    assert located == short and located.stat().st_size == _gguf().stat().st_size
    assert [p.name for p in short.parent.iterdir()] == [short.name]  # no staging file left


def test_flipped_bytes_in_the_cached_safetensors_name_the_folder_to_delete(tmp_path: Path, gemma) -> None:
    # A copy of the real cache: the GGUF (read only, linked) and the converted folder (copied).
    (tmp_path / "gguf").mkdir()
    (tmp_path / "gguf" / _gguf().name).symlink_to(_gguf())
    folder = tmp_path / "converted" / Path(gemma.source).name
    shutil.copytree(gemma.source, folder)
    first = load_causal_lm("gemma-3-270m", cache_dir=tmp_path)  # records checksums if the copy had none
    assert first.from_cache and Path(first.source) == folder
    recorded = json.loads((folder / "amplify_conversion.json").read_text())["sha256"]
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= set(recorded)
    del first
    _flip_middle(folder / "model.safetensors")
    with pytest.raises(ModelCacheError, match="model.safetensors") as info:
        load_causal_lm("gemma-3-270m", cache_dir=tmp_path)
    message = str(info.value)
    assert f"Delete {folder}" in message and "corrupt" in message
    assert "\n" not in message


# ------------------------------------------------------------------ context
def test_scorer_refuses_a_prompt_past_the_context_before_any_forward(gemma) -> None:
    context = gemma.model.config.max_position_embeddings
    scorer = LabelScorer(gemma)
    with _peak_rss() as peak:
        before = _rss()
        t = time.perf_counter()
        with pytest.raises(ContextLengthError) as info:
            scorer.score(["Q: is this short? A:", _long_text(context) + "\nA:"], LABELS)
        elapsed = time.perf_counter() - t
    message = str(info.value)
    assert "Prompt 2 of 2" in message and f"context of {context:,} tokens" in message
    assert f"TextLimits.for_context({context})" in message and "fewer demonstrations" in message
    assert info.value.tokens > context == info.value.context
    assert elapsed < 10.0, elapsed
    assert peak() - before < 300 * 2**20, (peak() - before) / 2**20  # MB: a tokenisation, no attention


def test_kernel_rows_past_the_context_raise_before_the_forward(gemma) -> None:
    # The path of CausalLMProxy and the causal explainers' TargetLogProb.
    context = gemma.model.config.max_position_embeddings
    rows = make_rows([[2] * (context + 1)], [context], 0, gemma.device)
    t = time.perf_counter()
    with pytest.raises(ContextLengthError, match="scored row"), torch.no_grad():
        rows_label_logprobs(gemma.model, *rows.forward_args(), input_ids=rows.input_ids)
    assert time.perf_counter() - t < 1.0


def test_predict_pool_names_the_example_whose_prompt_is_too_long(gemma) -> None:
    context = gemma.model.config.max_position_embeddings
    examples = [
        Example("short-1", "Is the sky blue?", "yes"),
        Example("long-7", _long_text(context), "no"),
        Example("short-2", "Is fire cold?", "no"),
    ]
    predictor = SLMPredictor(gemma, LABELS, Frame(instruction="Answer yes or no.\n"))
    with _peak_rss() as peak:
        before = _rss()
        t = time.perf_counter()
        with pytest.raises(InputTooLongError) as info:
            predict_pool(predictor, examples)
        elapsed = time.perf_counter() - t
    message = str(info.value)
    assert message.startswith("example 'long-7'"), message
    assert "short-1" not in message and "short-2" not in message
    assert elapsed < 20.0, elapsed
    assert peak() - before < 300 * 2**20, (peak() - before) / 2**20


def test_builder_names_the_example_its_explainer_cannot_fit_and_keeps_earlier_batches(tmp_path: Path, gemma) -> None:
    # A proxy predictor (which truncates) lets the long row reach the causal explainer.
    context = gemma.model.config.max_position_embeddings
    examples = [Example(f"ok-{i}", f"Is {w} a colour?", "yes" if i % 2 else "no") for i, w in enumerate("abcd")]
    examples.append(Example("huge-9", _long_text(context), "no"))
    task = Task("too-long", LABELS, tuple(examples), instruction="Answer yes or no.\n")
    proxy = ProxyClassifier.from_task(task, epochs=0, seed=0)
    store = RationaleStore.local("too-long", tmp_path / "chroma", embeddings=default_embeddings())
    explainer = GradXActivationExplainer(gemma, task.labels, Frame.from_task(task), k=2)
    config = BuildConfig(strategy="random", n=5, batch_size=4, balanced=False, df_filter=False)
    builder = DemonstrationBuilder(task, proxy, explainer, store, config, progress=False)
    t = time.perf_counter()
    with pytest.raises(InputTooLongError) as info:
        builder.run()
    assert str(info.value).startswith("example 'huge-9'"), str(info.value)
    assert time.perf_counter() - t < 60.0
    # Whatever batch came before the long row was written; nothing of the failing batch was.
    assert store.count() <= 4
