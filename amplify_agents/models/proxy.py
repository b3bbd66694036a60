"""Proxy models for AMPLIFY: differentiable label scorers that gradient explainers can open.

These are models (they are fitted, saved, loaded and predict); the gradient explainers
that open them are in :mod:`amplify_agents.explainers.gradient`.

AMPLIFY (Krishna et al. 2023) explains a small *proxy* model, not the LLM that will
read the prompt: a fine-tuned BERT-style classifier (:class:`ProxyClassifier`), or,
Self-AMPLIFY-style (Bhan et al. 2024), the causal LM itself scoring each label after
the prompt (:class:`CausalLMProxy`, through the scoring kernel of
:class:`~amplify_agents.models.scoring.LabelScorer`, so it explains the scorer's
numbers). Both implement :class:`DifferentiableLabelModel`:

* :meth:`~DifferentiableLabelModel.encode` tokenizes a batch and returns input
  embeddings (detached leaf tensors an attribution method can differentiate), the
  attention mask and, per row, which positions are tokens of the *input text* with
  their character offsets relative to that text (special and template tokens are not
  features);
* :meth:`~DifferentiableLabelModel.label_logits_from_embeddings` maps those embeddings
  to one score per label, differentiably;
* :meth:`~DifferentiableLabelModel.predict_proba` gives label probabilities without
  gradients (batched), e.g. for the misclassification confidence score
  (:func:`misclassification_confidence`).

Truncation: an input longer than the model's maximum length loses tokens from the
*end of the input text* (the template around it, e.g. the ``"\\nA:"`` after it, is
kept so the label is still scored where it belongs); the row is flagged in
:attr:`EncodedBatch.truncated` and explainers copy the flag to
``Explanation.info["truncated"]``. It is never silent.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from tqdm.auto import tqdm

from amplify_agents.errors import ExplanationError, LabelError
from amplify_agents.framing import Frame
from amplify_agents.models.kernel import encode_label, encode_prompt, make_rows, rows_label_logprobs, vocab_logprobs
from amplify_agents.models.loading import LoadedModel, load_causal_lm, load_encoder
from amplify_agents.tasks import Example, Task

__all__ = [
    "CausalLMProxy",
    "DifferentiableLabelModel",
    "EncodedBatch",
    "ProxyClassifier",
    "TrainingBatch",
    "TrainingObjective",
    "misclassification_confidence",
    "task_loss",
    "weights_frozen",
]

# The frame of a plain classifier: the prompt is the input text itself.
_BARE_FRAME = Frame(instruction="", input_prefix="", output_prefix="", label_prefix="")
_CONFIG_FILE = "amplify_proxy.json"


@dataclass
class EncodedBatch:
    """A tokenized batch, ready for :meth:`DifferentiableLabelModel.label_logits_from_embeddings`.

    Attributes:
        texts: the input texts, one per row.
        input_ids: ``[B, T]`` token ids of the whole prompt (padded).
        embeddings: ``[B, T, H]`` input embeddings; a detached leaf tensor (``requires_grad``
            is off: attribution methods switch it on).
        attention_mask: ``[B, T]``, 1 on real tokens.
        feature_mask: ``[B, T]`` bool, True on tokens of the input text (the features).
        offsets: per row and position, the token's character span relative to the input
            text, or ``None`` for a position that is not a feature (special, template, pad).
            A token that straddles the text's boundary is clipped to the text.
        tokens: per row and position, the token string ("" for padding).
        truncated: per row, whether tokens of the input text were dropped to fit.
        extra: model-specific data (prompt lengths, keyword arguments for the model).
    """

    texts: list[str]
    input_ids: torch.Tensor
    embeddings: torch.Tensor
    attention_mask: torch.Tensor
    feature_mask: torch.Tensor
    offsets: list[list[tuple[int, int] | None]]
    tokens: list[list[str]]
    truncated: list[bool]
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)

    def feature_positions(self, row: int) -> list[int]:
        """Positions of the input-text tokens of ``row``, in order."""
        return [i for i, off in enumerate(self.offsets[row]) if off is not None]


@runtime_checkable
class DifferentiableLabelModel(Protocol):
    """A model that scores a fixed label space and is differentiable in its input embeddings."""

    labels: tuple[str, ...]
    """The label space, in the order of the logits' last dimension."""

    @property
    def settings(self) -> dict[str, Any]:
        """What identifies this model's outputs (model name, training), for explainer settings."""
        ...

    def encode(self, texts: Sequence[str], frame: Frame | None = None) -> EncodedBatch:
        """Tokenize and embed ``texts`` (``frame`` overrides the model's own, if it has one)."""
        ...

    def label_logits_from_embeddings(self, embeds: torch.Tensor, batch: EncodedBatch) -> torch.Tensor:
        """``[B, n_labels]`` label scores from ``embeds`` (shaped like ``batch.embeddings``)."""
        ...

    def predict_proba(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Label probabilities of each text, batched, without gradients."""
        ...


def misclassification_confidence(probs: Mapping[str, float], gold: str) -> float:
    """AMPLIFY's misclassification confidence score: p(best wrong label) - p(gold).

    Positive exactly when the model prefers a wrong label (then it is the MCS of the
    paper: how confidently the example is misclassified); zero or negative otherwise.
    """
    if gold not in probs:
        raise LabelError(f"Gold label {gold!r} is not in the label space {sorted(probs)}.")
    wrong = [p for label, p in probs.items() if label != gold]
    if not wrong:
        raise LabelError("The label space has a single label: there is no wrong label to compare with.")
    return max(wrong) - probs[gold]


# --------------------------------------------------------------------------- helpers
@dataclass
class _Row:
    ids: list[int]
    offsets: list[tuple[int, int] | None]
    tokens: list[str]
    truncated: bool


def _tokenize_row(tokenizer: Any, prompt: str, span: tuple[int, int], max_tokens: int) -> _Row:
    """Tokenize ``prompt``; mark the tokens of ``prompt[span]`` as features; fit in ``max_tokens``.

    Offsets come from the fast tokenizer (``return_offsets_mapping``) and are made
    relative to the span. Truncation drops input-text tokens from the end of the text,
    so the template after the text survives.
    """
    encoded = encode_prompt(tokenizer, prompt, span)  # the kernel's tokenisation, as the scorer's
    ids, offsets = encoded.ids, list(encoded.spans)
    tokens = tokenizer.convert_ids_to_tokens(ids)
    truncated = False
    excess = len(ids) - max_tokens
    if excess > 0:
        text_positions = [i for i, off in enumerate(offsets) if off is not None]
        if len(text_positions) <= excess:
            raise ExplanationError(
                f"The prompt template alone takes {len(ids) - len(text_positions)} of the model's "
                f"{max_tokens} tokens: shorten the instruction or use a model with a longer context."
            )
        drop = set(text_positions[-excess:])
        keep = [i for i in range(len(ids)) if i not in drop]
        ids = [ids[i] for i in keep]
        offsets = [offsets[i] for i in keep]
        tokens = [tokens[i] for i in keep]
        truncated = True
    return _Row(ids, offsets, tokens, truncated)


def _tokenize_texts(tokenizer: Any, texts: Sequence[str], frame: Frame, max_tokens: int) -> list[_Row]:
    """One :func:`_tokenize_row` per text, framed by ``frame``."""
    if not texts:
        raise ValueError("Nothing to encode: pass at least one text.")
    return [_tokenize_row(tokenizer, *frame.render(text), max_tokens) for text in texts]


def _pad_rows(
    rows: list[_Row], pad: int, device: torch.device, *, left: bool
) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Padded ids, attention mask, and each row's first real position."""
    width = max(len(r.ids) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long, device=device)
    mask = torch.zeros((len(rows), width), dtype=torch.long, device=device)
    starts = []
    for i, r in enumerate(rows):
        start = width - len(r.ids) if left else 0
        ids[i, start : start + len(r.ids)] = torch.tensor(r.ids, device=device)
        mask[i, start : start + len(r.ids)] = 1
        starts.append(start)
    return ids, mask, starts


def _encoded_batch(loaded: LoadedModel, texts: list[str], rows: list[_Row], pad: int, *, left: bool) -> EncodedBatch:
    """Pad ``rows`` and embed them (``extra`` is left for the model to fill)."""
    ids, mask, starts = _pad_rows(rows, pad, loaded.device, left=left)
    width = ids.shape[1]
    offsets: list[list[tuple[int, int] | None]] = []
    tokens: list[list[str]] = []
    for r, start in zip(rows, starts, strict=True):
        end_pad = width - start - len(r.ids)
        offsets.append([None] * start + r.offsets + [None] * end_pad)
        tokens.append([""] * start + r.tokens + [""] * end_pad)
    feature = torch.tensor([[o is not None for o in row] for row in offsets], device=ids.device)
    with torch.no_grad():
        # Detached leaves: attribution methods switch requires_grad on themselves.
        embeds = loaded.model.get_input_embeddings()(ids).detach()
    return EncodedBatch(
        texts=texts,
        input_ids=ids,
        embeddings=embeds,
        attention_mask=mask,
        feature_mask=feature,
        offsets=offsets,
        tokens=tokens,
        truncated=[r.truncated for r in rows],
    )


def _max_length(loaded: LoadedModel, override: int | None) -> int:
    if override is not None:
        return override
    candidates = [
        getattr(loaded.model.config, "max_position_embeddings", None),
        getattr(loaded.tokenizer, "model_max_length", None),
    ]
    # Tokenizers without a limit report a huge sentinel (1e30): ignore it.
    values = [int(c) for c in candidates if isinstance(c, int) and 0 < c < 10**7]
    return min(values) if values else 2048


@contextmanager
def weights_frozen(module: torch.nn.Module) -> Iterator[None]:
    """Switch off ``requires_grad`` of the weights during a forward pass.

    Attribution needs gradients w.r.t. the input embeddings only; with frozen weights
    autograd keeps no activations for weight gradients. The graph is built during the
    forward pass, so restoring the flags afterwards does not affect the backward pass.
    """
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def _check_labels(labels: Sequence[str]) -> tuple[str, ...]:
    labels = tuple(labels)
    if len(labels) < 2:
        raise LabelError(f"A proxy needs at least two labels, got {labels!r}.")
    if len(set(labels)) != len(labels):
        raise LabelError(f"Duplicate labels in {labels!r}.")
    return labels


def _softmax_rows(logits: torch.Tensor, labels: Sequence[str]) -> list[dict[str, float]]:
    probs = torch.softmax(logits.float(), dim=-1).tolist()
    return [dict(zip(labels, row, strict=True)) for row in probs]


# ---------------------------------------------------------------- training
@dataclass
class TrainingBatch:
    """One batch of :meth:`ProxyClassifier.fit_objective`: the examples, padded, and each row's tokens.

    Attributes:
        index: positions of the batch's examples in the training list.
        input_ids / attention_mask: ``[B, T]``, padded as the proxy pads.
        targets: ``[B]`` gold label indices.
        rows: each row's tokens with character offsets relative to its input text (``None`` on
            tokens that are not the text's: special tokens, the frame).
        starts: each row's first real position (left padding shifts it).
        model_kwargs: what the model needs besides ids and mask (position ids when left-padded).
        epoch: epochs trained before this batch's epoch, plus the epoch's number (0-based, counted
            over every call), so an objective can warm up.
    """

    index: list[int]
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    targets: torch.Tensor
    rows: list[_Row]
    starts: list[int]
    model_kwargs: dict[str, Any]
    epoch: int

    def offsets(self, row: int) -> list[tuple[int, tuple[int, int]]]:
        """``(position, (start, end))`` of each input-text token of ``row``, in order."""
        start = self.starts[row]
        return [(start + i, off) for i, off in enumerate(self.rows[row].offsets) if off is not None]


TrainingObjective = Callable[["ProxyClassifier", TrainingBatch], dict[str, torch.Tensor]]
"""What :meth:`ProxyClassifier.fit_objective` minimises: ``objective(proxy, batch)`` returns named
scalar tensors, ``"loss"`` (what is minimised) and any parts to report (``"task_loss"``, ...)."""


def task_loss(proxy: ProxyClassifier, batch: TrainingBatch) -> dict[str, torch.Tensor]:
    """Cross-entropy of the gold labels: the plain fine-tuning objective (:meth:`ProxyClassifier.fit`)."""
    logits = proxy.loaded.model(
        input_ids=batch.input_ids, attention_mask=batch.attention_mask, **batch.model_kwargs
    ).logits
    loss = torch.nn.functional.cross_entropy(logits, batch.targets)
    return {"loss": loss, "task_loss": loss.detach()}


# ---------------------------------------------------------------- ProxyClassifier
class ProxyClassifier:
    """An encoder with a sequence-classification head over a task's label space (AMPLIFY's proxy).

    Build it with :meth:`from_task`; fine-tune it on the demo pool with :meth:`fit`
    (AMPLIFY reports E = 0, 10 and 200 epochs: E = 0 is an untrained head). Special
    tokens ([CLS], [SEP]) are not features. BERT-style models are right-padded;
    models whose tokenizer has no CLS token (GPT-2 style, which pool the last token) are
    left-padded with position ids computed from the attention mask.

    Args:
        loaded: an encoder loaded with a classification head
            (``load_encoder(name, num_labels=len(labels))``).
        labels: the label space (head output ``i`` is ``labels[i]``).
        frame: text around the input (default: none, the input alone); only the input's
            tokens are features.
        max_length: token limit (default: the model's).
        lr / batch_size / seed: training settings used by :meth:`fit`.
        weight_decay: AdamW weight decay.
        progress: show a tqdm bar while training.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        labels: Sequence[str],
        *,
        frame: Frame | None = None,
        max_length: int | None = None,
        lr: float = 5e-5,
        batch_size: int = 16,
        seed: int = 0,
        weight_decay: float = 0.01,
        progress: bool = True,
    ) -> None:
        self.loaded = loaded
        self.labels = _check_labels(labels)
        n_out = getattr(loaded.model.config, "num_labels", None)
        if n_out != len(self.labels):
            raise LabelError(
                f"The model's head has {n_out} outputs but the label space has {len(self.labels)} labels: "
                f"load it with load_encoder(name, num_labels={len(self.labels)})."
            )
        self.frame = frame or _BARE_FRAME
        self.max_length = _max_length(loaded, max_length)
        self.lr = lr
        self.batch_size = batch_size
        self.seed = seed
        self.weight_decay = weight_decay
        self.progress = progress
        self.epochs_trained = 0
        #: How the proxy was trained beyond plain fine-tuning (UIMER's method, settings and
        #: losses: :meth:`amplify_agents.models.uimer.UimerTrainer.fit` sets it), else None.
        self.training: dict[str, Any] | None = None
        tok = loaded.tokenizer
        # GPT-2-style heads pool the last position: pad on the left so it is a real token.
        self.left_pad = tok.cls_token is None
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        if getattr(loaded.model.config, "pad_token_id", None) is None:
            loaded.model.config.pad_token_id = tok.pad_token_id
        loaded.model.config.id2label = dict(enumerate(self.labels))
        loaded.model.config.label2id = {lab: i for i, lab in enumerate(self.labels)}

    @classmethod
    def from_task(
        cls,
        task: Task,
        model: str | os.PathLike[str] = "all-MiniLM-L6-v2",
        *,
        epochs: int = 0,
        lr: float = 5e-5,
        batch_size: int = 16,
        seed: int = 0,
        device: str | torch.device | None = None,
        frame: Frame | None = None,
        max_length: int | None = None,
        progress: bool = True,
    ) -> ProxyClassifier:
        """Load ``model`` with a fresh head over ``task.labels`` and fine-tune it on ``task`` for ``epochs``.

        The head's initialisation is seeded by ``seed``, so equal arguments give equal models.
        """
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            loaded = load_encoder(model, num_labels=len(task.labels), device=device)
        proxy = cls(
            loaded,
            task.labels,
            frame=frame,
            max_length=max_length,
            lr=lr,
            batch_size=batch_size,
            seed=seed,
            progress=progress,
        )
        if epochs > 0:
            proxy.fit(task.examples, epochs)
        return proxy

    @property
    def settings(self) -> dict[str, Any]:
        """Model name and training settings (they change the explanations)."""
        return {
            "proxy": "classifier",
            "model": self.loaded.name,
            "epochs": self.epochs_trained,
            "lr": self.lr,
            "seed": self.seed,
            **({"training": self.training["method"]} if self.training else {}),
        }

    # ----------------------------------------------------------------- tokens
    def _rows(self, texts: Sequence[str], frame: Frame | None) -> list[_Row]:
        return _tokenize_texts(self.loaded.tokenizer, texts, frame or self.frame, self.max_length)

    def _pad(self, rows: list[_Row]) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        return _pad_rows(rows, self._pad_id, self.loaded.device, left=self.left_pad)

    @property
    def _pad_id(self) -> int:
        return int(self.loaded.tokenizer.pad_token_id)  # set in __init__ when the tokenizer had none

    def _model_kwargs(self, mask: torch.Tensor) -> dict[str, Any]:
        if self.left_pad:
            # Left padding shifts positions; count them from the first real token instead.
            return {"position_ids": (mask.cumsum(-1) - 1).clamp(min=0)}
        return {}

    def encode(self, texts: Sequence[str], frame: Frame | None = None) -> EncodedBatch:
        """Tokenize and embed ``texts`` (word embeddings only: position embeddings are added inside)."""
        texts = list(texts)
        batch = _encoded_batch(self.loaded, texts, self._rows(texts, frame), self._pad_id, left=self.left_pad)
        batch.extra["model_kwargs"] = self._model_kwargs(batch.attention_mask)
        return batch

    # ----------------------------------------------------------------- logits
    def label_logits_from_embeddings(self, embeds: torch.Tensor, batch: EncodedBatch) -> torch.Tensor:
        """Classification logits ``[B, n_labels]``, differentiable w.r.t. ``embeds`` (not the weights)."""
        with weights_frozen(self.loaded.model):
            out = self.loaded.model(
                inputs_embeds=embeds, attention_mask=batch.attention_mask, **batch.extra["model_kwargs"]
            )
        return out.logits

    @torch.no_grad()
    def predict_proba(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Softmax over the head's logits for each text, in batches of ``batch_size``."""
        texts = list(texts)
        out: list[dict[str, float]] = []
        for start in range(0, len(texts), self.batch_size):
            chunk = texts[start : start + self.batch_size]
            rows = self._rows(chunk, None)
            ids, mask, _ = self._pad(rows)
            logits = self.loaded.model(input_ids=ids, attention_mask=mask, **self._model_kwargs(mask)).logits
            out.extend(_softmax_rows(logits, self.labels))
        return out

    # --------------------------------------------------------------- training
    def fit(
        self,
        examples: Iterable[Example] | Iterable[tuple[str, str]],
        epochs: int,
        *,
        lr: float | None = None,
        batch_size: int | None = None,
    ) -> list[float]:
        """Fine-tune the whole model with AdamW on ``examples`` for ``epochs`` epochs (cross-entropy).

        Deterministic for a given ``seed`` (shuffling and dropout use their own seeded
        generators; the global RNG state is restored afterwards). Epochs add up over
        calls (:attr:`epochs_trained`).

        Args:
            examples: :class:`~amplify_agents.tasks.Example` s or ``(text, label)`` pairs.
            epochs: passes over the examples (0 does nothing).
            lr / batch_size: override the values given at construction.

        Returns:
            The mean training loss of each epoch.

        Raises:
            LabelError: an example's label is not in the label space.
        """
        history = self.fit_objective(task_loss, examples, epochs, lr=lr, batch_size=batch_size)
        return [epoch["task_loss"] for epoch in history]

    def fit_objective(
        self,
        objective: TrainingObjective,
        examples: Iterable[Example] | Iterable[tuple[str, str]],
        epochs: int,
        *,
        lr: float | None = None,
        batch_size: int | None = None,
        desc: str = "fine-tuning proxy",
    ) -> list[dict[str, float]]:
        """Fine-tune the whole model with AdamW, minimising ``objective(self, batch)["loss"]``.

        The one training loop of the proxy (:meth:`fit` is this loop with :func:`task_loss`;
        UIMER's objectives add an interpretation loss). Seeded as :meth:`fit` describes.

        Returns:
            Per epoch, the mean over examples of every value the objective reported
            (``"loss"`` and its parts, e.g. ``"task_loss"``).
        """
        pairs = [(e.input, e.label) if isinstance(e, Example) else (e[0], e[1]) for e in examples]
        if epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {epochs}.")
        if epochs == 0:
            return []
        if not pairs:
            raise ValueError("No examples to train on.")
        unknown = sorted({y for _, y in pairs if y not in self.labels})
        if unknown:
            raise LabelError(f"Labels {unknown} are not in the proxy's label space {list(self.labels)}.")
        lr = self.lr if lr is None else lr
        bs = batch_size or self.batch_size
        model = self.loaded.model
        device = self.loaded.device
        targets = torch.tensor([self.labels.index(y) for _, y in pairs], device=device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=self.weight_decay)
        # The seed is offset by the epochs already trained so that fit(5); fit(5) == fit(10) in spirit.
        gen = torch.Generator().manual_seed(self.seed + self.epochs_trained)
        n_batches = (len(pairs) + bs - 1) // bs
        history: list[dict[str, float]] = []
        model.train()
        try:
            with torch.random.fork_rng(devices=[] if device.type != "cuda" else [device.index or 0]):
                torch.manual_seed(self.seed + self.epochs_trained)  # dropout masks
                bar = tqdm(total=epochs * n_batches, desc=desc, disable=not self.progress)
                for epoch in range(epochs):
                    order = torch.randperm(len(pairs), generator=gen).tolist()
                    totals: dict[str, float] = {}
                    for start in range(0, len(order), bs):
                        idx = order[start : start + bs]
                        rows = self._rows([pairs[i][0] for i in idx], None)
                        ids, mask, starts = self._pad(rows)
                        kwargs = self._model_kwargs(mask)
                        batch = TrainingBatch(
                            idx, ids, mask, targets[idx], rows, starts, kwargs, self.epochs_trained + epoch
                        )
                        parts = objective(self, batch)
                        optimizer.zero_grad(set_to_none=True)
                        parts["loss"].backward()
                        optimizer.step()
                        values = {name: float(value.detach()) for name, value in parts.items()}
                        for name, value in values.items():
                            totals[name] = totals.get(name, 0.0) + value * len(idx)
                        bar.update(1)
                        bar.set_postfix(epoch=f"{epoch + 1}/{epochs}", **{k: f"{v:.3f}" for k, v in values.items()})
                    history.append({name: total / len(pairs) for name, total in totals.items()})
                bar.close()
        finally:
            model.eval()
            model.zero_grad(set_to_none=True)
        self.epochs_trained += epochs
        return history

    # ---------------------------------------------------------------- storage
    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the model, tokenizer and proxy settings to ``directory`` (created if needed)."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        self.loaded.model.save_pretrained(path)
        self.loaded.tokenizer.save_pretrained(path)
        config = {
            "labels": list(self.labels),
            "frame": asdict(self.frame),
            "max_length": self.max_length,
            "lr": self.lr,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "weight_decay": self.weight_decay,
            "epochs_trained": self.epochs_trained,
            "model": self.loaded.name,
        }
        if self.training is not None:
            config["training"] = self.training  # optional: proxies saved before UIMER have none
        (path / _CONFIG_FILE).write_text(json.dumps(config, indent=2))
        return path

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike[str],
        *,
        device: str | torch.device | None = None,
        progress: bool = True,
    ) -> ProxyClassifier:
        """Read a proxy written by :meth:`save`."""
        path = Path(directory)
        config_file = path / _CONFIG_FILE
        if not config_file.is_file():
            raise FileNotFoundError(f"{config_file} not found: {path} was not written by ProxyClassifier.save().")
        config = json.loads(config_file.read_text())
        loaded = load_encoder(path, num_labels=len(config["labels"]), device=device)
        loaded.name = config["model"]  # keep the original name in settings, not the directory
        proxy = cls(
            loaded,
            config["labels"],
            frame=Frame(**config["frame"]),
            max_length=config["max_length"],
            lr=config["lr"],
            batch_size=config["batch_size"],
            seed=config["seed"],
            weight_decay=config["weight_decay"],
            progress=progress,
        )
        proxy.epochs_trained = config["epochs_trained"]
        proxy.training = config.get("training")
        return proxy


# ------------------------------------------------------------------ CausalLMProxy
class CausalLMProxy:
    """A causal LM as a proxy: each label's logit is the summed log-probability of its tokens
    as a continuation of ``frame.render(text)`` (after ``frame.label_prefix``).

    These are the same numbers as :class:`~amplify_agents.models.LabelScorer` gives with
    ``label_prefix=frame.label_prefix`` (both run :mod:`amplify_agents.models.kernel`),
    computed from ``inputs_embeds`` so they can be differentiated. Only the input text's
    tokens are features: the instruction, the prefixes and BOS are not. Rows are
    right-padded (real tokens never attend to pads). When every label is one token, one
    row per text is enough; otherwise each text is run once per label.

    Args:
        loaded: the causal LM and its (fast) tokenizer.
        labels: the label space.
        frame: how an input sits in the prompt (default ``Frame()``: ``"\\nQ: {text}\\nA:"``).
        max_length: token limit for prompt + label (default: the model's).
        batch_size: texts per forward pass in :meth:`predict_proba`.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        labels: Sequence[str],
        *,
        frame: Frame | None = None,
        max_length: int | None = None,
        batch_size: int = 8,
    ) -> None:
        self.loaded = loaded
        self.labels = _check_labels(labels)
        self.frame = frame or Frame()
        self.max_length = _max_length(loaded, max_length)
        self.batch_size = batch_size
        self._label_ids: dict[str, list[list[int]]] = {}

    @classmethod
    def from_task(
        cls,
        task: Task,
        model: str | os.PathLike[str] | LoadedModel = "gemma-3-270m",
        *,
        frame: Frame | None = None,
        device: str | torch.device | None = None,
        max_length: int | None = None,
        batch_size: int = 8,
    ) -> CausalLMProxy:
        """A proxy over ``task.labels`` framed as the task declares (:meth:`Frame.from_task`)."""
        loaded = model if isinstance(model, LoadedModel) else load_causal_lm(model, device=device)
        return cls(
            loaded,
            task.labels,
            frame=frame or Frame.from_task(task),
            max_length=max_length,
            batch_size=batch_size,
        )

    @property
    def settings(self) -> dict[str, Any]:
        """Model name and frame (they change the explanations)."""
        return {"proxy": "causal_lm", "model": self.loaded.name, "frame": asdict(self.frame)}

    def label_token_ids(self, label_prefix: str | None = None) -> list[list[int]]:
        """Token ids of ``label_prefix + label`` for each label (tokenized like LabelScorer)."""
        sep = self.frame.label_prefix if label_prefix is None else label_prefix
        if sep not in self._label_ids:
            self._label_ids[sep] = [encode_label(self.loaded.tokenizer, lab, sep) for lab in self.labels]
        return self._label_ids[sep]

    def encode(self, texts: Sequence[str], frame: Frame | None = None) -> EncodedBatch:
        """Tokenize ``frame.render(text)`` for each text (right-padded) and embed the tokens.

        The embeddings come from ``get_input_embeddings()`` as they are: for Gemma they
        already include the sqrt(hidden) scaling, and the model does not rescale
        ``inputs_embeds``.
        """
        texts = list(texts)
        fr = frame or self.frame
        label_ids = self.label_token_ids(fr.label_prefix)
        # Room for the longest label after the prompt: it is scored inside the context.
        budget = self.max_length - max(len(ids) for ids in label_ids)
        rows = _tokenize_texts(self.loaded.tokenizer, texts, fr, budget)
        batch = _encoded_batch(self.loaded, texts, rows, self._pad_id, left=False)
        batch.extra.update(lengths=[len(r.ids) for r in rows], label_prefix=fr.label_prefix)
        return batch

    @property
    def _pad_id(self) -> int:
        return self.loaded.tokenizer.pad_token_id or 0  # right padding: never attended to

    def label_logits_from_embeddings(self, embeds: torch.Tensor, batch: EncodedBatch) -> torch.Tensor:
        """``[B, n_labels]`` summed label log-probs, differentiable w.r.t. ``embeds`` (not the weights)."""
        model = self.loaded.model
        lengths: list[int] = batch.extra["lengths"]
        label_ids = self.label_token_ids(batch.extra["label_prefix"])
        with weights_frozen(model):
            if all(len(ids) == 1 for ids in label_ids):
                # One row per text: the last prompt position predicts every label's one token.
                hidden = model.base_model(inputs_embeds=embeds, attention_mask=batch.attention_mask).last_hidden_state
                rows = torch.arange(len(lengths), device=embeds.device)
                last = hidden[rows, torch.tensor(lengths, device=embeds.device) - 1]
                return vocab_logprobs(model, last)[:, [ids[0] for ids in label_ids]]
            # One row per (text, label), scored by the kernel as LabelScorer scores it.
            prompts = [batch.input_ids[b, :n].tolist() for b, n in enumerate(lengths)]
            batch_rows = make_rows(
                [p + ids for p in prompts for ids in label_ids],
                [len(p) for p in prompts for _ in label_ids],
                self._pad_id,
                embeds.device,
            )
            inputs = self._row_embeddings(embeds, batch_rows.input_ids, lengths, len(label_ids))
            values = rows_label_logprobs(model, *batch_rows.forward_args(), inputs_embeds=inputs)
        return values.view(len(lengths), len(label_ids))

    def _row_embeddings(
        self, embeds: torch.Tensor, row_ids: torch.Tensor, lengths: list[int], n_labels: int
    ) -> torch.Tensor:
        """The rows' input embeddings: each text's (differentiable) prompt embeddings, then the
        label's and the padding's (constants)."""
        with torch.no_grad():
            constant = self.loaded.model.get_input_embeddings()(row_ids)
        width = row_ids.shape[1]  # longer than any prompt: every row ends with a label
        prompt = torch.nn.functional.pad(embeds.repeat_interleave(n_labels, dim=0), (0, 0, 0, width - embeds.shape[1]))
        n = torch.tensor(lengths, device=embeds.device).repeat_interleave(n_labels)
        in_prompt = torch.arange(width, device=embeds.device)[None, :] < n[:, None]
        return torch.where(in_prompt[..., None], prompt, constant.to(embeds.dtype))

    @torch.no_grad()
    def label_logits(self, texts: Sequence[str]) -> torch.Tensor:
        """``[N, n_labels]`` summed label log-probs of ``texts``, without gradients."""
        texts = list(texts)
        parts = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.encode(texts[start : start + self.batch_size])
            parts.append(self.label_logits_from_embeddings(batch.embeddings, batch))
        return torch.cat(parts)

    def predict_proba(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Softmax over the summed label log-probs (the same as ``LabelScores.probs``)."""
        if not texts:
            return []
        return _softmax_rows(self.label_logits(texts), self.labels)
