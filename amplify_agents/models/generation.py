"""Free-form generation with a causal LM, batched with left padding."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch

from amplify_agents.models.loading import LoadedModel

__all__ = ["GenerationSettings", "cut_at_stops", "generate_ids", "generate_text"]


@dataclass(frozen=True)
class GenerationSettings:
    """Decoding settings. The defaults are greedy decoding, as in the papers' code."""

    max_new_tokens: int = 64
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    num_beams: int = 1
    stop: tuple[str, ...] = ()
    """Cut the text at the first of these strings (e.g. "\\nQ:")."""
    seed: int | None = None


@torch.inference_mode()
def generate_text(
    loaded: LoadedModel,
    prompts: Sequence[str],
    settings: GenerationSettings = GenerationSettings(),
    *,
    batch_size: int = 8,
) -> list[str]:
    """Continue each prompt; return only the new text, cut at the first stop string."""
    if isinstance(prompts, str):
        raise TypeError("prompts must be a list of strings, not one string.")
    tok = loaded.tokenizer
    if settings.seed is not None:
        torch.manual_seed(settings.seed)
    outputs: list[str] = []
    for start in range(0, len(prompts), batch_size):
        chunk = list(prompts[start : start + batch_size])
        # Left padding (generation continues from the last column), asked per call so
        # the shared tokenizer is not mutated under other threads.
        enc = tok(chunk, return_tensors="pt", padding=True, padding_side="left").to(loaded.device)
        kwargs = dict(
            max_new_tokens=settings.max_new_tokens,
            do_sample=settings.do_sample,
            num_beams=settings.num_beams,
            pad_token_id=tok.pad_token_id,
        )
        if settings.do_sample:
            kwargs.update(temperature=settings.temperature, top_p=settings.top_p)
        out = generate_ids(loaded, enc, **kwargs)
        new = out[:, enc["input_ids"].shape[1] :]
        for text in tok.batch_decode(new, skip_special_tokens=True):
            outputs.append(cut_at_stops(text, settings.stop))
    return outputs


def generate_ids(loaded: LoadedModel, encoded: Mapping[str, Any], **kwargs: Any) -> torch.Tensor:
    """``model.generate`` on tokenised inputs: the prompt ids followed by the new ones."""
    # transformers' GenerationMixin is invisible to the type checker through nn.Module's
    # __getattr__ (it sees a Tensor); the cast states what generate returns without a dict.
    run = cast(Callable[..., torch.Tensor], loaded.model.generate)
    return run(**encoded, **kwargs)


def cut_at_stops(text: str, stops: Sequence[str] | None) -> str:
    """``text`` up to the first occurrence of any (non-empty) stop string."""
    cut = len(text)
    for stop in stops or ():
        if stop:
            i = text.find(stop)
            if i != -1:
                cut = min(cut, i)
    return text[:cut]
