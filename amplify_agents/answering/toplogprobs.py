"""Label log-probabilities from the top-k alternatives a chat endpoint returns per generated token.

A chat completion with ``logprobs=True, top_logprobs=K`` gives, for each generated token, its
log-probability and the K most likely tokens at that position. After the answer cue ("The
answer is"), a label's probability is read along the generated path:

* while the generated tokens spell the start of the label, their log-probabilities add up;
* at the first position where some alternative completes the label (or where the label
  leaves the generated path), that alternative's log-probability is added. The rest of a
  label after its distinguishing token is taken as certain ("(b" → "(b)");
* a label whose next piece is not among the K alternatives gets the smallest listed
  log-probability, an upper bound, and is reported in ``outside_top_k``.

Written here because no library reads a label distribution off OpenAI-style top-logprob lists.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from amplify_agents.models.scoring import LabelScores

__all__ = [
    "TokenChoice",
    "answer_start",
    "completion_token_choices",
    "label_scores_from_tokens",
    "needs_more_tokens",
    "token_choices",
]


@dataclass(frozen=True)
class TokenChoice:
    """One generated token: its text, its log-probability and the top alternatives at its position."""

    token: str
    logprob: float
    top: Mapping[str, float]


def token_choices(content: Sequence[Mapping[str, Any]]) -> list[TokenChoice]:
    """OpenAI's ``logprobs.content`` list (dicts with token, logprob, top_logprobs) as token choices."""
    return [
        TokenChoice(
            str(c["token"]), float(c["logprob"]), {t["token"]: float(t["logprob"]) for t in c.get("top_logprobs") or []}
        )
        for c in content
    ]


def completion_token_choices(logprobs: Mapping[str, Any] | None) -> list[TokenChoice]:
    """A completions reply's ``logprobs`` (``tokens``, ``token_logprobs``, ``top_logprobs``, as
    ``/v1/completions`` and LangChain's ``OpenAI`` ``generation_info["logprobs"]`` give them) as
    token choices; empty when the server returned no top alternatives. Tokens without a
    log-probability (an echoed first token) are skipped."""
    if not isinstance(logprobs, Mapping):
        return []
    tokens, values, tops = (logprobs.get(k) for k in ("tokens", "token_logprobs", "top_logprobs"))
    if not tokens or not values or not tops:
        return []
    return [
        TokenChoice(str(t), float(v), {str(k): float(x) for k, x in (top or {}).items()})
        for t, v, top in zip(tokens, values, tops, strict=False)
        if v is not None
    ]


def needs_more_tokens(tokens: Sequence[TokenChoice], labels: Sequence[str], answer_prefix: str = "") -> bool:
    """Whether some label was still being spelled by the generated tokens when they ran out
    (labels sharing their first tokens, such as "(a)" and "(b)", need the next position)."""
    start = answer_start(tokens, answer_prefix)
    return any(_label_logprob(tokens, start, label)[1] == "short" for label in labels)


def answer_start(tokens: Sequence[TokenChoice], answer_prefix: str) -> int:
    """The index of the first token after the last answer cue in the generated text (0 when none)."""
    words = answer_prefix.split()
    text = "".join(t.token for t in tokens)
    if not words:
        return 0
    found = list(re.finditer(r"\s+".join(re.escape(w) for w in words), text, re.IGNORECASE))
    if not found:
        return 0
    cut, pos = found[-1].end(), 0
    for i, t in enumerate(tokens):
        if pos >= cut:
            return i
        pos += len(t.token)
    return len(tokens)


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def _label_logprob(tokens: Sequence[TokenChoice], start: int, label: str) -> tuple[float, str]:
    """(log-probability, how) of ``label`` starting at token ``start``.

    ``how``: ``"exact"`` (read off the alternatives), ``"bound"`` (not among them: an upper
    bound) or ``"short"`` (the generated tokens ran out while still spelling the label: more
    tokens would tell).
    """
    remaining = label.strip().lower()
    total, began = 0.0, False
    for choice in tokens[start:]:
        candidates = dict(choice.top)
        candidates.setdefault(choice.token, choice.logprob)
        finishing, partial = [], []
        for text, lp in candidates.items():
            piece = (text if began else text.lstrip()).lower()
            if not piece:
                continue
            if piece.startswith(remaining):
                finishing.append(lp)
            elif remaining.startswith(piece):
                partial.append((text, piece, lp))
        if finishing:
            return total + _logsumexp(finishing), "exact"
        on_path = [p for p in partial if p[0] == choice.token]
        if on_path:  # the generated token spells more of the label: follow it
            _, piece, lp = on_path[0]
            total, remaining, began = total + lp, remaining[len(piece) :], True
            continue
        if partial:  # an alternative spells the label's distinguishing piece; its rest is taken as certain
            return total + _logsumexp([lp for _, _, lp in partial]), "exact"
        return total + min(candidates.values()), "bound"
    if began:
        return total, "short"
    return total + (min(tokens[-1].top.values()) if tokens and tokens[-1].top else -50.0), "bound"


def label_scores_from_tokens(
    tokens: Sequence[TokenChoice], labels: Sequence[str], answer_prefix: str
) -> tuple[LabelScores, tuple[str, ...]]:
    """Label scores read off a generated token path, and the labels not read exactly (outside the
    returned top-k, or still being spelled when the tokens ran out: see :func:`needs_more_tokens`)."""
    start = answer_start(tokens, answer_prefix)
    values, outside = [], []
    for label in labels:
        lp, how = _label_logprob(tokens, start, label)
        values.append(lp)
        if how != "exact":
            outside.append(label)
    scores = LabelScores(
        labels=tuple(labels), logprobs=tuple(values), mean_logprobs=tuple(values), n_tokens=(1,) * len(labels)
    )
    return scores, tuple(outside)
