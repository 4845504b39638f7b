"""Benchmark of the fused spectral patch embedding against its pure-PyTorch reference.

For each case (sensor/input dtype, image size, patch size, width D; batch 64) it times,
in the same process and on the same data:

* ``op``       -- ``cuda_ext.spectral_patch_embed`` (the compiled C++/CUDA op),
* ``eager``    -- ``cuda_ext.reference_spectral_patch_embed`` run eagerly,
* ``compiled`` -- the same reference under ``torch.compile``,

forward only and forward+backward (gradients of the projection weight and bias, as in
training where the raw input needs none), then prints a table of times, speed-ups and
the op's achieved memory throughput (minimum bytes moved / time) against the machine's
copy bandwidth, measured in the same run. Times are the best of ``--repeats`` runs after
warm-up (the best is the least disturbed by other processes on a shared machine).

    python benchmarks/patch_embed.py --quick      # a subset, a few minutes on a laptop CPU
    python benchmarks/patch_embed.py              # every case of docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from cuda_ext.ops import op_available, spectral_patch_embed
from cuda_ext.reference import reference_spectral_patch_embed

# Sensor inputs: bands, raw dtype, per-band statistics (in the units after dB), log flags.
SENSORS: dict[str, dict[str, Any]] = {
    "S2-uint16": dict(bands=13, dtype=torch.uint16, mean=1500.0, std=900.0, log=False),
    "S2-float32": dict(bands=13, dtype=torch.float32, mean=0.15, std=0.09, log=False),
    "S1-log": dict(bands=2, dtype=torch.float32, mean=-15.0, std=5.5, log=True),
}
BATCH = 64
SIZES = (120, 128)
PATCHES = (8, 16)
WIDTHS = (192, 384, 768)
TARGET = ("S2-uint16", 128, 16, 384)  # the CPU target case of issue 6


@dataclass
class Case:
    """One benchmark configuration."""

    sensor: str
    size: int
    patch: int
    width: int
    weight_dtype: str = "float32"

    @property
    def label(self) -> str:
        """Short name for tables."""
        return f"{self.sensor} {self.size}px p{self.patch} D{self.width} {self.weight_dtype}"


def cases(quick: bool, device: str) -> list[Case]:
    """The full grid, or the quick subset; bf16 weights as well on GPU."""
    if quick:
        grid = [TARGET, ("S2-float32", 128, 16, 384), ("S2-uint16", 120, 8, 192),
                ("S1-log", 128, 16, 768), ("S1-log", 120, 8, 384)]
    else:
        grid = list(itertools.product(SENSORS, SIZES, PATCHES, WIDTHS))
    dtypes = ["float32", "bfloat16"] if device == "cuda" else ["float32"]
    return [Case(*g, weight_dtype=d) for g in grid for d in dtypes]


def synchronise(device: str) -> None:
    """Waits for queued GPU work (no-op on CPU)."""
    if device == "cuda":
        torch.cuda.synchronize()


def best_time(fn: Callable[[], Any], device: str, repeats: int, warmup: int = 2) -> float:
    """Best wall time of ``fn`` in seconds over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    synchronise(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronise(device)
        times.append(time.perf_counter() - start)
    return min(times)


def copy_bandwidth(device: str, megabytes: int = 512) -> float:
    """Measured memory bandwidth in GB/s: read + write of a large tensor copy."""
    n = megabytes * 2**20 // 4
    src = torch.rand(n, device=device)
    dst = torch.empty_like(src)
    t = best_time(lambda: dst.copy_(src), device, repeats=5)
    return 2 * src.numel() * 4 / t / 1e9


def make_inputs(case: Case, device: str) -> dict[str, Any]:
    """Raw input, parameters and statistics of one case (fixed seed)."""
    spec = SENSORS[case.sensor]
    g = torch.Generator().manual_seed(0)
    shape = (BATCH, spec["bands"], case.size, case.size)
    if spec["dtype"] == torch.uint16:
        x = torch.randint(0, 10000, shape, generator=g, dtype=torch.int32).to(torch.uint16)
    elif spec["log"]:
        x = torch.rand(shape, generator=g) * 0.3  # linear sigma0
    else:
        x = torch.rand(shape, generator=g) * 0.4  # reflectance
    w_dtype = getattr(torch, case.weight_dtype)
    C, p = spec["bands"], case.patch
    weight = (torch.randn(case.width, C, p, p, generator=g) * 0.02).to(device, w_dtype)
    bias = torch.zeros(case.width, device=device, dtype=w_dtype)
    f64 = dict(dtype=torch.float64, device=device)
    return dict(
        x=x.to(device),
        weight=weight.requires_grad_(),
        bias=bias.requires_grad_(),
        mean=torch.full((C,), spec["mean"], **f64),
        std=torch.full((C,), spec["std"], **f64),
        patch_size=p,
        nodata=0 if spec["dtype"] == torch.uint16 else None,
        log_bands=[True] * C if spec["log"] else None,
    )


def min_bytes(case: Case, args: dict[str, Any]) -> int:
    """Bytes a perfect forward pass must move: raw input, weight, bias, tokens, valid."""
    x, w = args["x"], args["weight"]
    L = (case.size // case.patch) ** 2
    out = BATCH * L * (case.width * w.element_size() + 4)
    return x.numel() * x.element_size() + 2 * w.numel() * w.element_size() + out


def run_case(case: Case, device: str, repeats: int, compile_ref: bool) -> dict[str, Any]:
    """Times op / eager / compiled forward and forward+backward for one case."""
    args = make_inputs(case, device)
    grad = None
    impls: dict[str, Callable[..., Any]] = {
        "op": spectral_patch_embed,
        "eager": reference_spectral_patch_embed,
    }
    if compile_ref:
        impls["compiled"] = torch.compile(reference_spectral_patch_embed, dynamic=False)
    result: dict[str, Any] = {"case": asdict(case), "label": case.label}
    for name, fn in impls.items():
        def forward(fn: Callable[..., Any] = fn) -> Any:
            with torch.no_grad():
                return fn(**args)

        def train_step(fn: Callable[..., Any] = fn) -> None:
            nonlocal grad
            tokens, _ = fn(**args)
            if grad is None:
                grad = torch.randn_like(tokens)  # (B, L, D)
            tokens.backward(grad)
            args["weight"].grad = args["bias"].grad = None

        start = time.perf_counter()
        forward()
        train_step()
        synchronise(device)
        result[f"{name}_first_call_s"] = time.perf_counter() - start  # includes compilation
        result[f"{name}_fwd_s"] = best_time(forward, device, repeats)
        result[f"{name}_fwdbwd_s"] = best_time(train_step, device, repeats)
    for ref in [r for r in ("eager", "compiled") if r in impls]:
        result[f"speedup_fwd_vs_{ref}"] = result[f"{ref}_fwd_s"] / result["op_fwd_s"]
        result[f"speedup_fwdbwd_vs_{ref}"] = result[f"{ref}_fwdbwd_s"] / result["op_fwdbwd_s"]
    result["op_fwd_GBps"] = min_bytes(case, args) / result["op_fwd_s"] / 1e9
    # The projection alone (a GEMM on an already packed, normalised patch matrix): the floor
    # that any implementation of this layer pays; op_fwd_s - gemm_fwd_s is the fusion's cost.
    B, L = BATCH, (case.size // case.patch) ** 2
    w2d = args["weight"].detach().reshape(case.width, -1)  # (D, K)
    packed = torch.randn(B * L, w2d.shape[1], device=device, dtype=w2d.dtype)  # (B*L, K)
    bias = args["bias"].detach()
    result["gemm_fwd_s"] = best_time(lambda: torch.addmm(bias, packed, w2d.t()), device, repeats)
    result["op_fwd_GFLOPs"] = 2 * packed.numel() * case.width / result["op_fwd_s"] / 1e9
    return result


def machine(device: str) -> dict[str, Any]:
    """Description of where the benchmark ran."""
    info: dict[str, Any] = {
        "device": device,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
    }
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
        info["tf32"] = torch.backends.cuda.matmul.allow_tf32
    return info


def render(results: list[dict[str, Any]], info: dict[str, Any], console: Console) -> None:
    """Prints the results as a rich table."""
    table = Table(title=f"spectral patch embedding, batch {BATCH}, {info['device']} "
                        f"({info.get('gpu', info['cpu'])}, {info['threads']} threads); "
                        f"copy bandwidth {info['copy_bandwidth_GBps']:.1f} GB/s")
    for col in ("case", "op fwd ms", "GEMM ms", "eager fwd ms", "op f+b ms", "eager f+b ms",
                "compiled f+b ms", "f+b vs eager", "f+b vs compiled", "fwd vs compiled",
                "op GB/s (% bw)", "op GFLOP/s"):
        table.add_column(col, justify="left" if col == "case" else "right")
    for r in results:
        if "skipped" in r:
            table.add_row(r["label"], *["-"] * 10, r["skipped"])
            continue
        ms = {k: f"{v * 1e3:.1f}" for k, v in r.items() if k.endswith("_s")}
        pct = 100 * r["op_fwd_GBps"] / info["copy_bandwidth_GBps"]
        table.add_row(
            r["label"], ms["op_fwd_s"], ms["gemm_fwd_s"], ms["eager_fwd_s"], ms["op_fwdbwd_s"],
            ms["eager_fwdbwd_s"], ms.get("compiled_fwdbwd_s", "-"),
            f"{r['speedup_fwdbwd_vs_eager']:.2f}x",
            f"{r['speedup_fwdbwd_vs_compiled']:.2f}x" if "compiled_fwdbwd_s" in r else "-",
            f"{r['speedup_fwd_vs_compiled']:.2f}x" if "compiled_fwd_s" in r else "-",
            f"{r['op_fwd_GBps']:.1f} ({pct:.0f}%)", f"{r['op_fwd_GFLOPs']:.0f}",
        )
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a subset of the cases")
    parser.add_argument("--target", action="store_true", help="only the CPU target case")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per measurement")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON file (default runs/benchmarks/patch_embed-<device>.json)")
    args = parser.parse_args(argv)
    console = Console(width=None if Console().is_terminal else 200)
    if not op_available(args.device):
        console.print(f"[red]the compiled op is unavailable on {args.device}; nothing to "
                      "compare (see `python -m cuda_ext.build`)[/red]")
        return 1
    torch._dynamo.config.cache_size_limit = 256  # one compiled graph per case
    info = machine(args.device)
    info["copy_bandwidth_GBps"] = copy_bandwidth(args.device)
    todo = [Case(*TARGET)] if args.target else cases(args.quick, args.device)
    results = []
    for i, case in enumerate(todo, 1):
        if case.size % case.patch:
            results.append({"case": asdict(case), "label": case.label,
                            "skipped": f"{case.size} not divisible by {case.patch}"})
            continue
        console.print(f"[{i}/{len(todo)}] {case.label}")
        results.append(run_case(case, args.device, args.repeats, not args.no_compile))
    render(results, info, console)
    out = args.out or Path("runs/benchmarks") / f"patch_embed-{args.device}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": info, "results": results}, indent=2))
    console.print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
