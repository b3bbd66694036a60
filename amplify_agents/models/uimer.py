"""UIMER: fine-tune AMPLIFY's proxy so that its attributions agree with gold rationales.

Chen, Jiang and Tu, "Using Interpretation Methods for Model Enhancement" (EMNLP 2023,
arXiv 2404.02068): when some training examples come with gold rationales (the words a person
marks as the reason for the label, or the keywords of demonstrations this library has already
verified), train the classifier with

    loss = task loss + alpha * interpretation loss

after ``warmup_epochs`` epochs on the task loss alone (the paper finds the warm-up matters).
A proxy that relies on the right words writes better AMPLIFY rationales. Three interpretation
losses, one per family of interpretation methods in the paper:

``"gb"`` (gradient-based, UIMER-GB)
    Grad x Input of the gold label's logit on the input embeddings (the attribution
    ``grad_x_input`` explains), computed with ``create_graph`` so that it can be trained;
    standardised over the input's tokens; a hinge pushes the mean attribution of rationale
    tokens above that of the other tokens by ``margin``.
``"im"`` (erasure/replace-based, UIMER-IM)
    Replace the rationale's tokens by the mask token, and separately as many other tokens drawn
    at random; erasing the rationale must lower the gold label's log-probability more than
    erasing the others, by ``margin``.
``"dm"`` (extractor-based, UIMER-DM)
    A small extractor (a linear probe on the classifier's last hidden states) predicts which
    tokens to keep; rounds alternate on every batch: the extractor learns, on the frozen
    classifier, the smallest set of tokens that keeps the gold prediction (DiffMask-style, with a
    sparsity weight); then the classifier learns the task while the extractor's token scores are
    pulled towards the gold rationale (binary cross-entropy), so the classifier's states must make
    the rationale the part it needs.

Gold rationales are marks on the input (:data:`amplify_agents.tasks.GoldMarks`): words of the
input or ``(start, end)`` character spans, from the task file's ``rationale`` column or from a
rationale store (:func:`rationales_from_store`). An unusable one (a word not in the input, an
empty rationale, a span out of range, a rationale that is all of the input or none of what the
proxy reads) is reported per example in :attr:`UimerReport.problems`, and that example is trained
on the task loss alone.

Example:
    >>> proxy = ProxyClassifier.from_task(train, epochs=0)                     # doctest: +SKIP
    >>> report = UimerTrainer(UimerSettings(method="gb", alpha=1.0, warmup_epochs=2)).fit(proxy, train, epochs=10)
    >>> report.epochs[-1]   # {"loss": ..., "task_loss": ..., "interpretation_loss": ...}
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import torch

from amplify_agents.models.proxy import ProxyClassifier, TrainingBatch, task_loss, weights_frozen
from amplify_agents.tasks import Example, GoldMarks, Task

if TYPE_CHECKING:
    from amplify_agents.stores.chroma import RationaleStore, Where

__all__ = [
    "UIMER_METHODS",
    "UIMER_TRAININGS",
    "UimerReport",
    "UimerSettings",
    "UimerTrainer",
    "gold_spans",
    "rationales_from_store",
    "read_rationale_store",
]

UimerMethod = Literal["gb", "im", "dm"]
UIMER_METHODS: tuple[UimerMethod, ...] = ("gb", "im", "dm")
_PREFIX = "uimer-"
UIMER_TRAININGS: tuple[str, ...] = tuple(_PREFIX + m for m in UIMER_METHODS)
"""The trainings' names, as the CLI (``--proxy-training``) and the evaluation's method names spell them."""
Span = tuple[int, int]


@dataclass(frozen=True)
class UimerSettings:
    """UIMER's hyperparameters (the data go to :meth:`UimerTrainer.fit`).

    Attributes:
        method: ``"gb"``, ``"im"`` or ``"dm"`` (see the module's docstring).
        alpha: weight of the interpretation loss.
        warmup_epochs: epochs on the task loss alone before the interpretation loss joins.
        margin: the hinge's margin (``gb``: in standard deviations of the row's attributions;
            ``im``: in nats of the gold label's log-probability).
        sparsity: ``dm`` only: the extractor's price per kept token (fraction of the input).
        extractor_lr: ``dm`` only: the extractor's learning rate.
    """

    method: UimerMethod = "gb"
    alpha: float = 1.0
    warmup_epochs: int = 2
    margin: float = 1.0
    sparsity: float = 0.1
    extractor_lr: float = 1e-3

    def __post_init__(self) -> None:
        if self.method not in UIMER_METHODS:
            raise ValueError(f"Unknown UIMER method {self.method!r}: use one of {', '.join(UIMER_METHODS)}.")
        if not self.alpha >= 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha}.")
        if self.warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be >= 0, got {self.warmup_epochs}.")
        if not self.margin >= 0 or not self.sparsity >= 0 or not self.extractor_lr > 0:
            raise ValueError("margin and sparsity must be >= 0 and extractor_lr > 0.")

    @property
    def name(self) -> str:
        """``"uimer-gb"`` etc.: the training's name in proxy settings, saved proxies and the CLI."""
        return _PREFIX + self.method

    @classmethod
    def from_name(cls, name: str, **settings: Any) -> UimerSettings:
        """The settings of the training called ``name`` (one of :data:`UIMER_TRAININGS`), with ``settings``."""
        if name not in UIMER_TRAININGS:
            raise ValueError(f"Unknown UIMER training {name!r}: use one of {', '.join(UIMER_TRAININGS)}.")
        return cls(method=name.removeprefix(_PREFIX), **settings)  # type: ignore[arg-type]


@dataclass
class UimerReport:
    """What a UIMER training did.

    Attributes:
        method: ``"uimer-gb"``, ``"uimer-im"`` or ``"uimer-dm"``.
        settings: the :class:`UimerSettings`, as a dict.
        epochs: per epoch, the mean losses (``loss``, ``task_loss``, and ``interpretation_loss``
            after the warm-up).
        with_rationale: how many examples were trained with the interpretation loss.
        problems: example id -> why its gold rationale was not used (it was trained on the task
            loss alone).
    """

    method: str
    settings: dict[str, Any]
    epochs: list[dict[str, float]] = field(default_factory=list)
    with_rationale: int = 0
    problems: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON values (what a saved proxy keeps under ``"training"``)."""
        return asdict(self)


def gold_spans(text: str, marks: GoldMarks) -> tuple[Span, ...] | str:
    """The character spans of ``text`` that ``marks`` name, or why there are none.

    Words match whole words, case-insensitively, everywhere they occur; spans must satisfy
    ``0 <= start < end <= len(text)``.
    """
    if not marks:
        return "the rationale is empty"
    spans: list[Span] = []
    for mark in marks:
        if isinstance(mark, str):
            word = mark.strip()
            if not word:
                return "a rationale word is blank"
            found = [m.span() for m in re.finditer(rf"(?<!\w){re.escape(word)}(?!\w)", text, re.IGNORECASE)]
            if not found:
                return f"rationale word {_short(word)} is not in the input"
            spans.extend(found)
        else:
            start, end = mark
            if not 0 <= start < end <= len(text):
                return f"span [{start}, {end}] is out of range for an input of {len(text)} characters"
            spans.append((start, end))
    return tuple(sorted(set(spans)))


def rationales_from_store(store: RationaleStore, where: Where | None = None) -> dict[str, GoldMarks]:
    """Gold rationales from a rationale store: example id -> the keywords of its demonstration.

    Every demonstration in a store carries a gold label (builders store gold labels; feedback
    enters only when verified), and its keywords are the words its rationale names. Filter with
    ``where`` (e.g. ``{"strategy": "feedback"}`` for verified user feedback only).
    Demonstrations without keywords or without an example id are skipped.
    """
    out: dict[str, GoldMarks] = {}
    for demo in store.list(where=where):
        if demo.example_id and demo.keywords:
            out[demo.example_id] = tuple(demo.keywords)
    return out


def read_rationale_store(directory: str | os.PathLike[str], name: str) -> dict[str, GoldMarks]:
    """:func:`rationales_from_store` of the local store ``name`` in ``directory``, opened read-only."""
    from amplify_agents.stores import RationaleStore

    with RationaleStore.local(name, directory, read_only=True) as store:
        return rationales_from_store(store)


class UimerTrainer:
    """Fine-tunes a :class:`~amplify_agents.models.proxy.ProxyClassifier` with UIMER.

    Hyperparameters in the constructor, data in :meth:`fit` (as DSPy's teleprompters).

    Args:
        settings: the method, alpha, warm-up, margin (defaults: UIMER-GB, alpha 1, 2 warm-up epochs).
    """

    def __init__(self, settings: UimerSettings | None = None) -> None:
        self.settings = settings or UimerSettings()

    def fit(
        self,
        proxy: ProxyClassifier,
        examples: Task | Sequence[Example],
        epochs: int,
        *,
        rationales: Mapping[str, GoldMarks] | None = None,
    ) -> UimerReport:
        """Fine-tune ``proxy`` on ``examples`` for ``epochs`` epochs (warm-up included).

        Args:
            proxy: the classifier proxy (trained further if it was trained before).
            examples: the training examples; their :attr:`~amplify_agents.tasks.Example.gold_rationale`
                is the gold rationale.
            epochs: epochs in all; the first ``warmup_epochs`` use the task loss alone.
            rationales: gold rationales by example id (e.g. :func:`rationales_from_store`); they
                take precedence over the examples' own.

        Returns:
            The report, also kept on the proxy (``proxy.training``) and saved with it.
        """
        examples = list(examples.examples if isinstance(examples, Task) else examples)
        if epochs <= self.settings.warmup_epochs:
            raise ValueError(
                f"UIMER trains {epochs} epochs in all, of which {self.settings.warmup_epochs} are warm-up: "
                "give more epochs than warm-up epochs."
            )
        spans, problems = self._gold_tokens(proxy, examples, rationales or {})
        report = UimerReport(self.settings.name, asdict(self.settings), with_rationale=len(spans), problems=problems)
        warmup_until = proxy.epochs_trained + self.settings.warmup_epochs
        objective = _Objective(self.settings, spans, proxy, warmup_until=warmup_until)
        report.epochs = proxy.fit_objective(objective, examples, epochs, desc=f"training proxy ({report.method})")
        proxy.training = report.as_dict()
        return report

    @staticmethod
    def _gold_tokens(
        proxy: ProxyClassifier, examples: list[Example], rationales: Mapping[str, GoldMarks]
    ) -> tuple[dict[int, tuple[Span, ...]], dict[str, str]]:
        """Per training position, the gold spans that the proxy's tokens can learn from; and the problems."""
        spans: dict[int, tuple[Span, ...]] = {}
        problems: dict[str, str] = {}
        for i, ex in enumerate(examples):
            marks = rationales.get(ex.id, ex.gold_rationale)
            if marks is None:
                continue
            found = gold_spans(ex.input, marks)
            if isinstance(found, str):
                problems[ex.id] = found
                continue
            row = proxy._rows([ex.input], None)[0]
            inside = [_overlaps(off, found) for off in row.offsets if off is not None]
            if not any(inside):
                problems[ex.id] = f"no token of the rationale is within the proxy's {proxy.max_length}-token limit"
            elif all(inside):
                problems[ex.id] = "the rationale covers the whole input: nothing to contrast it with"
            else:
                spans[i] = found
        return spans, problems


def _overlaps(offset: Span, spans: tuple[Span, ...]) -> bool:
    return any(offset[0] < end and start < offset[1] for start, end in spans)


def _short(word: str, width: int = 40) -> str:
    return repr(word if len(word) <= width else word[: width - 3] + "...")


class _Objective:
    """The training objective of :meth:`ProxyClassifier.fit_objective`: task loss, plus alpha x the
    chosen interpretation loss on the rows that have a gold rationale (after the warm-up)."""

    def __init__(
        self, settings: UimerSettings, spans: dict[int, tuple[Span, ...]], proxy: ProxyClassifier, warmup_until: int
    ) -> None:
        self.settings = settings
        self.spans = spans
        self.warmup_until = warmup_until
        tok = proxy.loaded.tokenizer
        # Erasure replaces tokens by the mask token (BERT-style), else by padding.
        self.erase_id = tok.mask_token_id if tok.mask_token_id is not None else tok.pad_token_id
        self.generator = torch.Generator().manual_seed(proxy.seed)  # which other tokens `im` erases
        self.extractor: _Extractor | None = None

    def __call__(self, proxy: ProxyClassifier, batch: TrainingBatch) -> dict[str, torch.Tensor]:
        rows = [b for b, i in enumerate(batch.index) if i in self.spans]
        if batch.epoch < self.warmup_until or not rows or self.settings.alpha == 0:
            return task_loss(proxy, batch)
        masks = self._rationale_masks(batch, rows)  # [R, T] 1 = rationale, 0 = other input token, -1 = not input
        method = {"gb": self._gradient, "im": self._erasure, "dm": self._extractor}[self.settings.method]
        task, interpretation = method(proxy, batch, rows, masks)
        loss = task + self.settings.alpha * interpretation
        return {"loss": loss, "task_loss": task.detach(), "interpretation_loss": interpretation.detach()}

    def _rationale_masks(self, batch: TrainingBatch, rows: list[int]) -> torch.Tensor:
        masks = torch.full((len(rows), batch.input_ids.shape[1]), -1, dtype=torch.long)
        for r, b in enumerate(rows):
            spans = self.spans[batch.index[b]]
            for pos, off in batch.offsets(b):
                masks[r, pos] = int(_overlaps(off, spans))
        return masks.to(batch.input_ids.device)

    # ------------------------------------------------------------------ UIMER-GB
    def _gradient(
        self, proxy: ProxyClassifier, batch: TrainingBatch, rows: list[int], masks: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        model = proxy.loaded.model
        embeds = model.get_input_embeddings()(batch.input_ids)
        logits = model(inputs_embeds=embeds, attention_mask=batch.attention_mask, **batch.model_kwargs).logits
        task = torch.nn.functional.cross_entropy(logits, batch.targets)
        gold = logits[torch.arange(len(logits)), batch.targets]
        # Grad x Input (what the grad_x_input explainer reports), kept in the graph so it can be trained.
        (grads,) = torch.autograd.grad(gold.sum(), embeds, create_graph=True)
        attributions = (grads * embeds).sum(-1)[rows]
        hinges = []
        for r in range(len(rows)):
            values = attributions[r][masks[r] >= 0]
            is_gold = masks[r][masks[r] >= 0] == 1
            z = (values - values.mean()) / (values.std() + 1e-6)
            hinges.append(torch.relu(self.settings.margin - (z[is_gold].mean() - z[~is_gold].mean())))
        return task, torch.stack(hinges).mean()

    # ------------------------------------------------------------------ UIMER-IM
    def _erasure(
        self, proxy: ProxyClassifier, batch: TrainingBatch, rows: list[int], masks: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        model = proxy.loaded.model
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, **batch.model_kwargs).logits
        task = torch.nn.functional.cross_entropy(logits, batch.targets)
        ids = batch.input_ids[rows]
        without_gold, without_other = ids.clone(), ids.clone()
        for r in range(len(rows)):
            gold_pos = (masks[r] == 1).nonzero().flatten()
            other_pos = (masks[r] == 0).nonzero().flatten()
            drawn = other_pos[torch.randperm(len(other_pos), generator=self.generator)[: len(gold_pos)].to(ids.device)]
            without_gold[r, gold_pos] = self.erase_id
            without_other[r, drawn] = self.erase_id
        erased = model(
            input_ids=torch.cat([without_gold, without_other]),
            attention_mask=batch.attention_mask[rows].repeat(2, 1),
            **{k: v[rows].repeat(2, 1) for k, v in batch.model_kwargs.items()},
        ).logits
        targets = batch.targets[rows]
        full = torch.log_softmax(logits[rows], -1).gather(1, targets[:, None]).squeeze(1)
        after = torch.log_softmax(erased, -1).gather(1, targets.repeat(2)[:, None]).squeeze(1)
        drop_gold, drop_other = full - after[: len(rows)], full - after[len(rows) :]
        return task, torch.relu(self.settings.margin - (drop_gold - drop_other)).mean()

    # ------------------------------------------------------------------ UIMER-DM
    def _extractor(
        self, proxy: ProxyClassifier, batch: TrainingBatch, rows: list[int], masks: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        model = proxy.loaded.model
        if self.extractor is None:
            self.extractor = _Extractor(model.config.hidden_size, self.settings.extractor_lr).to(batch.input_ids.device)
        self.extractor.round(proxy, batch, self.erase_id, self.settings.sparsity)
        out = model(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            output_hidden_states=True,
            **batch.model_kwargs,
        )
        task = torch.nn.functional.cross_entropy(out.logits, batch.targets)
        keep = self.extractor.probe(out.hidden_states[-1][rows]).squeeze(-1)
        inside = masks >= 0
        interpretation = torch.nn.functional.binary_cross_entropy_with_logits(keep[inside], masks[inside].float())
        return task, interpretation


class _Extractor(torch.nn.Module):
    """UIMER-DM's extractor: a linear probe on the classifier's last hidden states, one keep-logit per token.

    Written here (not taken from a library) because DiffMask's published code is a research
    repository, not a package; the probe and its objective are a few lines.
    """

    def __init__(self, hidden: int, lr: float) -> None:
        super().__init__()
        self.probe = torch.nn.Linear(hidden, 1)
        self.optimizer = torch.optim.Adam(self.probe.parameters(), lr=lr)

    def round(self, proxy: ProxyClassifier, batch: TrainingBatch, erase_id: int, sparsity: float) -> None:
        """One extractor step on the frozen classifier: keep the gold prediction with as few input tokens
        as possible."""
        model = proxy.loaded.model
        inputs = torch.zeros_like(batch.attention_mask, dtype=torch.bool)
        for b in range(len(batch.index)):
            for pos, _ in batch.offsets(b):
                inputs[b, pos] = True
        with torch.no_grad():
            hidden = model(
                input_ids=batch.input_ids,
                attention_mask=batch.attention_mask,
                output_hidden_states=True,
                **batch.model_kwargs,
            ).hidden_states[-1]
            embed = model.get_input_embeddings()
            original = embed(batch.input_ids)
            erased = embed(torch.full_like(batch.input_ids, erase_id))
        keep = torch.sigmoid(self.probe(hidden).squeeze(-1))
        keep = torch.where(inputs, keep, torch.ones_like(keep))  # only the input's tokens can be dropped
        mixed = keep[..., None] * original + (1 - keep[..., None]) * erased
        with weights_frozen(model):
            logits = model(inputs_embeds=mixed, attention_mask=batch.attention_mask, **batch.model_kwargs).logits
        kept = (keep * inputs).sum() / inputs.sum().clamp(min=1)
        loss = torch.nn.functional.cross_entropy(logits, batch.targets) + sparsity * kept
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
