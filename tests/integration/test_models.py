"""Loading and scoring on the real offline models."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch

from amplify_agents.errors import ModelCacheError, ModelNotAvailableError
from amplify_agents.framing import Frame
from amplify_agents.models import LabelScorer, load_causal_lm, load_encoder, registry
from amplify_agents.models.loading import default_cache_dir
from amplify_agents.tasks import load_task


def test_gemma_loads_by_offline_name_and_reuses_its_cache(gemma) -> None:
    assert gemma.model.config.model_type.startswith("gemma3")
    converted = Path(gemma.source)
    assert converted.parent == default_cache_dir() / "converted"
    assert (converted / "amplify_conversion.json").exists()
    again = load_causal_lm("gemma-3-270m")
    assert again.from_cache and again.source == gemma.source
    ids = gemma.tokenizer("Hello world", return_tensors="pt")
    with torch.inference_mode():
        a = gemma.model(**ids).logits
        b = again.model(**ids).logits
    assert torch.allclose(a, b)


def test_corrupt_cache_names_the_directory_to_delete(tmp_path: Path) -> None:
    # Reuse the real GGUF, but plant a conversion marker next to a broken config.
    gguf = registry.resolve_offline("gemma-3-270m").locate(default_cache_dir())
    (tmp_path / "gguf").mkdir()
    shutil.copy(gguf, tmp_path / "gguf" / gguf.name)
    from amplify_agents.models.loading import _sha256

    key = _sha256(gguf)[:16]
    broken = tmp_path / "converted" / f"{gguf.stem}-{key}-float32"
    broken.mkdir(parents=True)
    (broken / "amplify_conversion.json").write_text("{}")
    (broken / "config.json").write_text("{not json")
    with pytest.raises(ModelCacheError, match=str(broken)):
        load_causal_lm("gemma-3-270m", cache_dir=tmp_path)


def test_missing_extra_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = registry.OfflineModel(
        name="not-installed",
        distribution="no-such-dist",
        kind="causal-lm",
        fmt="gguf",
        locate=lambda cache: registry._import("no_such_module_xyz", "no-such-dist", "not-installed"),  # type: ignore[arg-type,return-value]
    )
    monkeypatch.setitem(registry._BY_ALIAS, "not-installed", entry)
    with pytest.raises(ModelNotAvailableError, match=r"pip install 'amplify-agents\[offline\]'"):
        load_causal_lm("not-installed")


def test_missing_path_or_hub_id_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelNotAvailableError, match="GGUF file not found"):
        load_causal_lm(tmp_path / "missing.gguf")
    with pytest.raises(ModelNotAvailableError, match="offline name"):
        load_causal_lm("nobody/no-such-model-here")


def test_offline_name_of_the_wrong_kind_is_refused() -> None:
    with pytest.raises(ModelNotAvailableError, match="load_encoder"):
        load_causal_lm("all-MiniLM-L6-v2")


def test_minilm_loads_as_encoder_and_as_proxy_classifier(minilm) -> None:
    assert minilm.model.config.hidden_size == 384
    enc = minilm.tokenizer(["a sentence", "another one"], return_tensors="pt", padding=True)
    with torch.inference_mode():
        hidden = minilm.model(**enc).last_hidden_state
    assert hidden.shape[0] == 2 and hidden.shape[-1] == 384
    proxy = load_encoder("all-MiniLM-L6-v2", num_labels=3)
    with torch.inference_mode():
        logits = proxy.model(**enc).logits
    assert logits.shape == (2, 3)


@pytest.fixture(scope="module")
def snarks(bigbench_dir: Path):
    return load_task(bigbench_dir / "snarks")


def test_scoring_a_two_label_item_gives_a_distribution(gemma, snarks) -> None:
    frame = Frame.from_task(snarks)
    prompt, _ = frame.render(snarks[0].input)
    [scores] = LabelScorer(gemma).score([prompt], snarks.labels)
    assert scores.labels == ("(a)", "(b)")
    assert math.isclose(sum(scores.probs.values()), 1.0, rel_tol=1e-9)
    assert all(lp < 0 for lp in scores.logprobs)
    assert scores.predicted in snarks.labels


def test_batch_scoring_equals_one_by_one_and_naive(gemma, snarks) -> None:
    frame = Frame.from_task(snarks)
    demos = "".join(frame.demo(e.input, e.label) + "\n" for e in snarks.examples[:3])
    prompts = [demos + frame.render(e.input)[0] for e in snarks.examples[10:14]]
    scorer = LabelScorer(gemma, batch_size=3)  # 8 rows → batches of unequal width
    batched = scorer.score(prompts, snarks.labels)
    singles = [LabelScorer(gemma).score([p], snarks.labels)[0] for p in prompts]
    naive = scorer.score_naive(prompts, snarks.labels)
    for b, s, n in zip(batched, singles, naive):
        assert b.logprobs == pytest.approx(s.logprobs, abs=1e-4)
        assert b.logprobs == pytest.approx(n.logprobs, abs=1e-4)
        assert b.predicted == n.predicted


def test_labels_sharing_tokens_and_surface_forms_match_naive_past_the_sliding_window(gemma) -> None:
    # Labels that share their first tokens ("(a)" / "(A) ..."), single- and multi-token ones, and
    # prompts of unequal length past Gemma's 512-token sliding window: each prompt runs once and
    # its labels continue it as one token trie (kernel.label_tree_logprobs).
    demo = "Q: Player number {} of the team scored a goal in the final minute.\nA: yes\n\n"
    demos = "".join(demo.format(i) for i in range(30))
    prompts = [demos + f"Q: sentence {i} {'x ' * (3 * i)}\nA:" for i in range(3)]
    assert len(gemma.tokenizer(prompts[0])["input_ids"]) > 512
    labels = ["yes", "no", "(a)", "(A) a longer label", "(a) maybe"]
    scorer = LabelScorer(gemma, batch_size=2)
    naive = scorer.score_naive(prompts, labels)
    for fast, slow in zip(scorer.score(prompts, labels), naive):
        # Exact within a window; past it, a shorter prompt's pads take window slots: < 0.05 nats.
        assert fast.logprobs == pytest.approx(slow.logprobs, abs=0.05)
        assert fast.predicted == slow.predicted
    surface = scorer.score(prompts[:1], ["(a)", "(b)"], surface_forms=True)[0]
    assert math.isclose(sum(surface.probs.values()), 1.0, rel_tol=1e-9)


def test_multi_token_label_is_scored_over_all_its_tokens(gemma) -> None:
    scorer = LabelScorer(gemma)
    label = " photosynthesis in chloroplasts"
    n_tokens = len(gemma.tokenizer(label, add_special_tokens=False)["input_ids"])
    assert n_tokens > 2
    prompt = "Plants make sugar by"
    [s] = scorer.score([prompt], [label.strip(), "eating"])
    assert s.n_tokens[0] == n_tokens
    # The sum over tokens, computed by hand from one full forward pass.
    ids = gemma.tokenizer(prompt)["input_ids"] + gemma.tokenizer(label, add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        logp = torch.log_softmax(gemma.model(input_ids=torch.tensor([ids])).logits[0].float(), -1)
    start = len(ids) - n_tokens
    by_hand = sum(logp[t - 1, ids[t]].item() for t in range(start, len(ids)))
    first_only = logp[start - 1, ids[start]].item()
    assert s.logprobs[0] == pytest.approx(by_hand, abs=1e-4)
    assert s.logprobs[0] < first_only  # more than the first token was counted
    assert s.mean_logprobs[0] == pytest.approx(by_hand / n_tokens, abs=1e-5)


def test_prefix_cache_is_reused_across_calls(gemma, snarks) -> None:
    frame = Frame.from_task(snarks)
    demos = "".join(frame.demo(e.input, e.label) + "\n" for e in snarks.examples[:2])
    scorer = LabelScorer(gemma)
    first = scorer.score(
        [demos + frame.render(snarks[5].input)[0], demos + frame.render(snarks[6].input)[0]], snarks.labels
    )
    cached = scorer._prefix
    assert cached is not None and len(cached.ids) > 50
    second = scorer.score([demos + frame.render(snarks[5].input)[0]], snarks.labels)
    assert scorer._prefix is cached  # same cache object, not recomputed
    assert second[0].logprobs == pytest.approx(first[0].logprobs, abs=1e-4)


def test_a_short_last_prefix_is_not_reused_when_a_longer_one_is_shared(gemma, snarks) -> None:
    frame = Frame(instruction="Decide which statement is sarcastic, (a) or (b). Think about tone and context.\n")
    scorer = LabelScorer(gemma)
    zero_shot = [frame.render(snarks[i].input)[0] for i in (5, 6)]
    scorer.score(zero_shot, snarks.labels)
    instruction_only = scorer._prefix
    assert instruction_only is not None
    demos = "".join(frame.demo(e.input, e.label) + "\n" for e in snarks.examples[:2])
    few_shot = [frame.instruction + demos + frame.render(snarks[i].input, instruction=False)[0] for i in (5, 6, 7)]
    scores = scorer.score(few_shot, snarks.labels)
    # The demonstrations are shared by every prompt: they get their own cache, run once.
    assert len(scorer._prefix.ids) > len(instruction_only.ids) + 50
    naive = scorer.score_naive(few_shot, snarks.labels)
    for fast, slow in zip(scores, naive, strict=True):
        assert fast.logprobs == pytest.approx(slow.logprobs, abs=1e-4)
