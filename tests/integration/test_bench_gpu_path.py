"""benchmarks/bench_gpu_path.py runs end to end on a tiny random Mistral (seconds), on CPU and,
where there is one, on CUDA: every model and tensor of the library's path follows the device."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_gpu_path", ROOT / "benchmarks" / "bench_gpu_path.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _run(tmp_path: Path, device: str, *extra: str) -> dict:
    bench = _module()
    out = tmp_path / "gpu_path.json"
    argv = ["--config", "tiny", "--device", device, "--lengths", "16", "24", "--repeats", "1"]
    bench.main(
        [*argv, "--kernelshap-samples", "8", "--kernelshap-batch", "4", "--ig-steps", "2", "--out", str(out), *extra]
    )
    return json.loads(out.read_text())


def test_tiny_run_on_cpu_times_every_operation_both_ways(tmp_path: Path) -> None:
    result = _run(tmp_path, "cpu")
    rows = result["rows"]
    assert [(r["operation"], r["length"]) for r in rows] == [
        (op, n) for n in (16, 24) for op in ("forward", "grad_x_act", "deeplift", "integrated_gradients", "kernel_shap")
    ]
    for r in rows:
        assert r["library"]["error"] is None and r["plain"]["error"] is None, r
        assert r["library"]["seconds"] > 0 and r["plain"]["seconds"] > 0 and r["ratio"] > 0
        assert not r["library"]["info"].get("degenerate"), r
    shap = next(r for r in rows if r["operation"] == "kernel_shap")
    assert shap["library"]["info"]["forward_rows"] >= 8 and shap["plain"]["info"]["rows"] == 8
    assert result["meta"]["device"] == "cpu" and result["meta"]["dtype"] == "float32"


def test_the_model_is_built_on_the_device_in_the_dtype() -> None:
    bench = _module()
    args = bench.parse_args(["--config", "tiny", "--device", "cpu"])
    loaded = bench.build_model(args, torch.device("cpu"), torch.bfloat16)
    assert {p.dtype for p in loaded.model.parameters()} == {torch.bfloat16}
    assert loaded.model.config.vocab_size == 32000 >= len(loaded.tokenizer)
    for length in (16, 40, 100):
        assert len(bench.make_item(loaded, bench.Frame(), length).ids) == length


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_tiny_run_on_cuda(tmp_path: Path) -> None:
    result = _run(tmp_path, "cuda")
    assert result["meta"]["device"].startswith("cuda") and result["meta"]["dtype"] == "bfloat16"
    assert all(r["library"]["error"] is None and r["plain"]["error"] is None for r in result["rows"])
