"""AMPLIFY's proxy explainers on real models: a planted signal on a fine-tuned MiniLM, and
the offline Gemma scoring BIG-bench labels as a differentiable causal-LM proxy."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from amplify_agents.errors import ExplanationError, LabelError
from amplify_agents.explainers.base import Explainer, TokenAttribution
from amplify_agents.explainers.gradient import (
    ContrastiveGradientExplainer,
    ContrastiveGradXInputExplainer,
    GradientExplainer,
    GradXInputExplainer,
)
from amplify_agents.explainers.random import RandomExplainer
from amplify_agents.explainers.words import split_words
from amplify_agents.framing import Frame
from amplify_agents.models import LabelScorer
from amplify_agents.models.proxy import (
    CausalLMProxy,
    DifferentiableLabelModel,
    ProxyClassifier,
    misclassification_confidence,
)
from amplify_agents.tasks import Example, Task, load_task

GRADIENT_EXPLAINERS = [
    GradientExplainer,
    GradXInputExplainer,
    ContrastiveGradientExplainer,
    ContrastiveGradXInputExplainer,
]
KEYWORDS = {"pos": "zebra", "neg": "walnut"}
FILLERS = (
    "table river green music window garden paper simple morning yellow bottle quiet orange candle forest silver"
).split()


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    # On a shared 2-core machine two torch threads contend with other processes and
    # fine-tuning ran 5-10x slower than with one thread (measured: 4 s vs 15-40 s).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------ planted signal
def _planted(n: int, seed: int, prefix: str) -> list[Example]:
    """Sentences of 3-6 shared filler words plus one keyword that decides the label."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        label = "pos" if i % 2 == 0 else "neg"
        words = rng.sample(FILLERS, rng.randint(3, 6))
        words.insert(rng.randint(0, len(words)), KEYWORDS[label])
        out.append(Example(id=f"{prefix}{i}", input=" ".join(words).capitalize() + ".", label=label))
    return out


@pytest.fixture(scope="module")
def planted() -> tuple[Task, list[Example]]:
    train = _planted(60, seed=0, prefix="train")
    seen = {e.input for e in train}
    test = [e for e in _planted(24, seed=1, prefix="test") if e.input not in seen][:20]
    return Task(name="planted", labels=("pos", "neg"), examples=tuple(train)), test


@pytest.fixture(scope="module")
def trained(planted: tuple[Task, list[Example]]) -> ProxyClassifier:
    task, _ = planted
    return ProxyClassifier.from_task(task, epochs=6, lr=3e-4, batch_size=16, seed=0, progress=False)


def _hit_rate(explanations, examples: list[Example]) -> float:  # type: ignore[no-untyped-def]
    hits = [
        bool(x.top_words) and x.top_words[0].lower() == KEYWORDS[e.label]
        for x, e in zip(explanations, examples, strict=True)
    ]
    return sum(hits) / len(hits)


def test_the_proxy_learns_the_planted_rule(trained: ProxyClassifier, planted) -> None:  # type: ignore[no-untyped-def]
    _, test = planted
    assert isinstance(trained, DifferentiableLabelModel)
    probs = trained.predict_proba([e.input for e in test])
    assert all(max(p, key=p.get) == e.label for p, e in zip(probs, test, strict=True))
    assert all(misclassification_confidence(p, e.label) < 0 for p, e in zip(probs, test, strict=True))
    assert trained.settings["epochs"] == 6


@pytest.mark.parametrize("cls", GRADIENT_EXPLAINERS, ids=lambda c: c.name)
def test_gradient_explainers_rank_the_planted_keyword_first(
    cls: type[Explainer], trained: ProxyClassifier, planted
) -> None:  # type: ignore[no-untyped-def]
    _, test = planted
    texts, golds = [e.input for e in test], [e.label for e in test]
    signed = cls(trained, k=3).explain(texts, golds)  # type: ignore[call-arg]
    random_rate = _hit_rate(RandomExplainer(k=3).explain(texts, golds), test)
    if cls.name.endswith("grad_x_input"):
        # Grad x Input on BERT word embeddings: the keyword has by far the largest
        # |score|, but its sign depends on the training run (a LayerNorm follows the
        # embedding sum, so the gradient is nearly orthogonal to the embedding). Over
        # seeds 0-2 the signed hit rate was 0.55-0.95, the magnitude's 0.85-1.0.
        assert _hit_rate(signed, test) > random_rate
        ranked = cls(trained, k=3, rank_by="abs").explain(texts, golds)  # type: ignore[call-arg]
    else:
        assert all(s >= 0 for x in signed for s in x.token_scores)  # gradient norms
        ranked = signed
    assert _hit_rate(ranked, test) >= 0.8, [x.top_words for x in ranked]
    # Prediction and probabilities come from the explained forward pass.
    reference = trained.predict_proba(texts)
    for x, p, gold in zip(signed, reference, golds, strict=True):
        assert x.predicted == gold and x.explainer == cls.name
        assert x.label_probs is not None
        assert all(abs(x.label_probs[k] - p[k]) < 1e-5 for k in p)
        assert x.info["truncated"] is False
        if "contrastive" in cls.name:
            assert x.info["foil"] != gold  # the prediction is the target: the foil is the runner-up


def test_random_explainer_is_a_reproducible_control(planted) -> None:  # type: ignore[no-untyped-def]
    _, test = planted
    texts, golds = [e.input for e in test], [e.label for e in test]
    first = RandomExplainer(k=3, seed=0).explain(texts, golds)
    assert _hit_rate(first, test) < 0.5
    again = RandomExplainer(k=3, seed=0).explain(list(reversed(texts)), list(reversed(golds)))
    assert [x.top_words for x in first] == [x.top_words for x in reversed(again)]
    other = RandomExplainer(k=3, seed=1).explain(texts, golds)
    assert [x.top_words for x in first] != [x.top_words for x in other]
    for x, t in zip(first, texts, strict=True):
        assert len(x.top_words) == 3 and all(w in t for w in x.top_words) and x.degenerate is None


@pytest.mark.parametrize("cls", GRADIENT_EXPLAINERS, ids=lambda c: c.name)
def test_batched_explain_equals_one_by_one(cls: type[Explainer], trained: ProxyClassifier, planted) -> None:  # type: ignore[no-untyped-def]
    _, test = planted
    texts, golds = [e.input for e in test[:4]], [e.label for e in test[:4]]
    batched = cls(trained, batch_size=4).explain(texts, golds)  # type: ignore[call-arg]
    single = [cls(trained).explain_one(t, y) for t, y in zip(texts, golds, strict=True)]  # type: ignore[call-arg]
    for b, s in zip(batched, single, strict=True):
        assert b.tokens == s.tokens
        assert b.token_scores == pytest.approx(s.token_scores, rel=1e-4, abs=1e-6)
        assert b.top_words == s.top_words


def test_special_tokens_are_not_features(trained: ProxyClassifier) -> None:
    text = "Zebra table, river!"
    batch = trained.encode([text, "Walnut."])
    positions = batch.feature_positions(0)
    assert [batch.tokens[0][i] for i in positions] == ["zebra", "table", ",", "river", "!"]
    assert not any(batch.feature_mask[0, [0, positions[-1] + 1]].tolist())  # [CLS], [SEP]
    assert batch.offsets[1][3:] == [None] * (batch.input_ids.shape[1] - 3)  # [SEP] and padding


# ---------------------------------------------------------------------- bad input
def test_bad_inputs(trained: ProxyClassifier) -> None:
    explainer = GradXInputExplainer(trained, k=10)
    with pytest.raises(ExplanationError, match="empty"):
        explainer.explain_one("", "pos")
    with pytest.raises(ExplanationError):
        explainer.explain(["Zebra table.", "   "], ["pos", "pos"])
    with pytest.raises(LabelError, match="maybe"):
        explainer.explain_one("Zebra table.", "maybe")
    # k larger than the number of words: every eligible word comes back (the stop word
    # "the" and punctuation are not eligible).
    x = explainer.explain_one("The zebra, table.", "pos")
    assert sorted(x.top_words) == ["table", "zebra"]


def test_degenerate_attributions_have_no_top_words(trained: ProxyClassifier) -> None:
    class Constant(GradXInputExplainer):
        value = 0.0

        def _attribute(self, texts: list[str], targets: list[str]) -> list[TokenAttribution]:
            raws = super()._attribute(texts, targets)
            for raw in raws:
                raw.scores = [self.value] * len(raw.scores)
            return raws

    zero = Constant(trained).explain_one("Zebra table river.", "pos")
    assert zero.degenerate is not None and "zero" in zero.degenerate
    assert zero.top_words == [] and not zero.ok

    Constant.value = float("nan")
    nan = Constant(trained).explain_one("Zebra table river.", "pos")
    assert nan.degenerate is not None and "NaN" in nan.degenerate and nan.top_words == []


def test_long_inputs_are_truncated_with_a_flag(trained: ProxyClassifier) -> None:
    short = ProxyClassifier(trained.loaded, trained.labels, max_length=6, progress=False)
    long_text = "zebra table river green music window garden"
    x, y = GradientExplainer(short, k=4).explain([long_text, "zebra table"], ["pos", "pos"])
    assert x.info["truncated"] is True and y.info["truncated"] is False
    assert x.tokens == ["zebra", "table", "river", "green"]  # 6 - [CLS] - [SEP]
    kept = [o for o in short.encode([long_text]).offsets[0] if o is not None]
    assert len(kept) == 4 and all(0 <= s < e <= len(long_text) for s, e in kept)
    assert all(math.isnan(v) for v in x.word_scores[x.words.index("music") :])  # cut words get no score
    assert set(x.top_words) == {"zebra", "table", "river", "green"}


def test_words_cut_by_truncation_are_never_keywords(trained: ProxyClassifier) -> None:
    short = ProxyClassifier(trained.loaded, trained.labels, max_length=6, progress=False)
    x = GradientExplainer(short, k=5).explain_one("zebra table river green music window garden", "pos")
    assert set(x.top_words) <= {"zebra", "table", "river", "green"}


# ----------------------------------------------------------------------- training
def test_fit_is_seeded_and_save_load_round_trips(trained: ProxyClassifier, planted, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    task, test = planted
    small = task.with_examples(task.examples[:16])
    a = ProxyClassifier.from_task(small, epochs=1, lr=1e-3, seed=3, progress=False)
    b = ProxyClassifier.from_task(small, epochs=1, lr=1e-3, seed=3, progress=False)
    c = ProxyClassifier.from_task(small, epochs=1, lr=1e-3, seed=4, progress=False)
    texts = [e.input for e in test[:4]]
    pa, pb, pc = a.predict_proba(texts), b.predict_proba(texts), c.predict_proba(texts)
    assert pa == pb
    assert pa != pc
    with pytest.raises(LabelError, match="maybe"):
        a.fit([("zebra", "maybe")], 1)

    trained.save(tmp_path / "proxy")
    loaded = ProxyClassifier.load(tmp_path / "proxy", progress=False)
    assert loaded.labels == trained.labels and loaded.settings == trained.settings
    for p, q in zip(loaded.predict_proba(texts), trained.predict_proba(texts), strict=True):
        assert all(abs(p[k] - q[k]) < 1e-6 for k in p)


# -------------------------------------------------------------- Gemma as a proxy
@pytest.fixture(scope="module")
def snarks(bigbench_dir: Path) -> Task:
    return load_task(bigbench_dir / "snarks")


@pytest.fixture(scope="module")
def snarks_items(snarks: Task) -> list[Example]:
    return sorted(snarks.examples, key=lambda e: len(e.input))[:2]


@pytest.fixture(scope="module")
def gemma_proxy(gemma, snarks: Task) -> CausalLMProxy:  # type: ignore[no-untyped-def]
    return CausalLMProxy.from_task(snarks, gemma)


@pytest.fixture(scope="module")
def gemma_explanations(gemma_proxy: CausalLMProxy, snarks_items: list[Example]):  # type: ignore[no-untyped-def]
    texts, golds = [e.input for e in snarks_items], [e.label for e in snarks_items]
    return {cls.name: cls(gemma_proxy, k=5).explain(texts, golds) for cls in GRADIENT_EXPLAINERS}


def test_gemma_label_logits_equal_label_scorer(gemma, gemma_proxy: CausalLMProxy, snarks_items, bigbench_dir) -> None:  # type: ignore[no-untyped-def]
    # snarks labels "(a)"/"(b)" are several tokens (one row per label); causal_judgment's
    # "Yes"/"No" are one token each (one row per text): both code paths.
    cj = load_task(bigbench_dir / "causal_judgment")
    cj_proxy = CausalLMProxy.from_task(cj, gemma)
    cj_items = sorted(cj.examples, key=lambda e: len(e.input))[:2]
    for proxy, items in ((gemma_proxy, snarks_items), (cj_proxy, cj_items)):
        texts = [e.input for e in items]
        prompts = [proxy.frame.render(t)[0] for t in texts]
        ref = LabelScorer(gemma, label_prefix=proxy.frame.label_prefix).score(prompts, proxy.labels)
        got = proxy.label_logits(texts)
        assert got.shape == (len(texts), len(proxy.labels))
        for row, scores in zip(got.tolist(), ref, strict=True):
            assert row == pytest.approx(list(scores.logprobs), abs=1e-3)
        for p, scores in zip(proxy.predict_proba(texts), ref, strict=True):
            assert all(abs(p[k] - scores.probs[k]) < 1e-4 for k in p)


def test_gemma_only_input_tokens_are_features(gemma, gemma_proxy: CausalLMProxy, snarks_items) -> None:  # type: ignore[no-untyped-def]
    texts = [e.input for e in snarks_items]
    batch = gemma_proxy.encode(texts)
    for row, text in enumerate(texts):
        positions = batch.feature_positions(row)
        offsets = [batch.offsets[row][i] for i in positions]
        assert all(0 <= s < e <= len(text) for s, e in offsets)  # type: ignore[misc]
        # Exactly the input's own tokens: no BOS, "\nQ:", "\nA:" or padding.
        assert len(positions) == len(gemma.tokenizer(text, add_special_tokens=False)["input_ids"])
        assert offsets[0][0] == 0 and offsets[-1][1] == len(text)  # type: ignore[index]


@pytest.fixture(scope="module")
def gemma_logits(gemma_proxy: CausalLMProxy, snarks_items: list[Example]) -> torch.Tensor:
    return gemma_proxy.label_logits([e.input for e in snarks_items])


@pytest.mark.parametrize("name", [c.name for c in GRADIENT_EXPLAINERS])
def test_gemma_gradient_explanations_are_finite_and_from_the_text(
    name: str, gemma_explanations, snarks_items, gemma_proxy: CausalLMProxy, gemma_logits: torch.Tensor
) -> None:  # type: ignore[no-untyped-def]
    reference = gemma_logits
    for x, e, ref in zip(gemma_explanations[name], snarks_items, reference, strict=True):
        assert x.degenerate is None and x.ok
        assert all(math.isfinite(s) for s in x.token_scores) and any(s != 0 for s in x.token_scores)
        words = {w.text for w in split_words(e.input)}
        assert len(x.top_words) == 5 and set(x.top_words) <= words
        assert len(x.tokens) == len(x.token_scores)
        assert x.info["truncated"] is False
        # The prediction comes from the same forward pass as the gradients.
        logits = [x.info["label_logits"][k] for k in gemma_proxy.labels]
        assert logits == pytest.approx(ref.tolist(), abs=1e-4)
        assert x.predicted == gemma_proxy.labels[int(ref.argmax())]


def test_gemma_batched_equals_one_by_one(gemma_explanations, gemma_proxy: CausalLMProxy, snarks_items) -> None:  # type: ignore[no-untyped-def]
    explainer = GradXInputExplainer(gemma_proxy, k=5)
    for batched, e in zip(gemma_explanations["grad_x_input"], snarks_items, strict=True):
        single = explainer.explain_one(e.input, e.label)
        assert single.tokens == batched.tokens
        scale = max(abs(s) for s in single.token_scores)
        assert batched.token_scores == pytest.approx(single.token_scores, abs=1e-4 * scale)
        assert single.top_words == batched.top_words


def test_gemma_truncation_keeps_the_template(gemma, snarks: Task) -> None:  # type: ignore[no-untyped-def]
    proxy = CausalLMProxy.from_task(snarks, gemma, max_length=16)
    text = max(snarks.examples, key=lambda e: len(e.input)).input
    batch = proxy.encode([text])
    assert batch.truncated == [True]
    n_label = max(len(ids) for ids in proxy.label_token_ids())
    assert batch.input_ids.shape[1] == 16 - n_label
    full = gemma.tokenizer(proxy.frame.render(text)[0])["input_ids"]
    tail = gemma.tokenizer(proxy.frame.output_prefix, add_special_tokens=False)["input_ids"]
    assert batch.input_ids[0, -len(tail) :].tolist() == full[-len(tail) :]  # "\nA:" survives
    with pytest.raises(ExplanationError, match="template"):
        CausalLMProxy(gemma, snarks.labels, frame=Frame(instruction="x " * 40), max_length=16).encode([text])


# ------------------------------------------------------- a GPT-2-style classifier
def test_gpt2_style_classifier_is_left_padded_and_batches_exactly(gemma, planted) -> None:  # type: ignore[no-untyped-def]
    # A tiny random GPT-2 with Gemma's tokenizer (no cls token: the head pools the last
    # position, so rows are left-padded and positions counted from the first real token).
    from transformers import GPT2Config, GPT2ForSequenceClassification

    from amplify_agents.models import LoadedModel

    task, test = planted
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(gemma.tokenizer), n_positions=64, n_embd=32, n_layer=1, n_head=2, num_labels=2)
    loaded = LoadedModel(GPT2ForSequenceClassification(config).eval(), gemma.tokenizer, "tiny-gpt2", "memory")
    proxy = ProxyClassifier(loaded, task.labels, lr=1e-3, progress=False)
    assert proxy.left_pad and loaded.model.config.pad_token_id == gemma.tokenizer.pad_token_id
    proxy.fit(task.examples[:8], 1)
    texts, golds = [e.input for e in test[:3]], [e.label for e in test[:3]]
    batch = proxy.encode(texts)
    for row, text in enumerate(texts):  # BOS and left padding are not features
        positions = batch.feature_positions(row)
        assert positions[-1] == batch.input_ids.shape[1] - 1
        assert len(positions) == len(gemma.tokenizer(text, add_special_tokens=False)["input_ids"])
    batched = GradXInputExplainer(proxy, batch_size=3).explain(texts, golds)
    for x, text, gold in zip(batched, texts, golds, strict=True):
        single = GradXInputExplainer(proxy).explain_one(text, gold)
        assert x.token_scores == pytest.approx(single.token_scores, rel=1e-4, abs=1e-7)
        assert x.label_probs == pytest.approx(single.label_probs, abs=1e-6)
    for p, x in zip(proxy.predict_proba(texts), batched, strict=True):  # input_ids path == embeds path
        assert p == pytest.approx(x.label_probs, abs=1e-6)
