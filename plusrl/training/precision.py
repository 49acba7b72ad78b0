"""Which precision a run computes in: bf16 autocast only where this machine measured it faster.

A capability flag is not enough on CPUs: oneDNN reports bf16 support on AVX-512 CPUs without
native BF16 (Intel Ice Lake / Cascade Lake class) and *emulates* it there, ~4x slower than
fp32; on AVX2-only CPUs bf16 is slower still. Only CPUs with AVX-512 BF16 or AMX run it faster.
So `auto` times the same small matmul workload in both dtypes once per machine and torch
version, caches the answer, and takes bf16 only when it won by a clear margin.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

log = logging.getLogger(__name__)

BF16_MIN_SPEEDUP = 1.25
"""bf16 changes a run's numerics; it has to buy at least this much speed to be chosen."""


@dataclass(frozen=True)
class PrecisionChoice:
    """What a run computes in, and why: saved in the run folder and logged at start."""

    requested: str
    """auto, bf16 or fp32, as the config asked."""
    mixed_precision: Literal["bf16", "no"]
    """accelerate's value: bf16 autocast or plain fp32."""
    reason: str

    @property
    def name(self) -> str:
        return "bf16" if self.mixed_precision == "bf16" else "fp32"


def cpu_model() -> str:
    """The CPU's marketing name (e.g. 'AMD EPYC 9B45'), or the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_kernels() -> str:
    """The kernel level torch and oneDNN run at here, e.g. 'AVX512' (with ONEDNN_MAX_CPU_ISA when set,
    since it changes which bf16 kernels oneDNN may use)."""
    capability = torch.backends.cpu.get_cpu_capability()
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA")
    return f"{capability} (ONEDNN_MAX_CPU_ISA={isa})" if isa else capability


def _seconds(work, repeats: int = 3) -> float:
    work()  # warm-up: kernel selection, allocator
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def measure_bf16_speedup(rows: int = 256, width: int = 576, hidden: int = 1536, steps: int = 4) -> float:
    """fp32 time / bf16-autocast time of a forward and backward through two linear layers shaped like
    the summarizer's MLP (SmolLM2: 576 → 1536): a few hundred ms in all."""
    generator = torch.Generator().manual_seed(0)
    up = torch.randn(hidden, width, generator=generator, requires_grad=True)
    down = torch.randn(width, hidden, generator=generator, requires_grad=True)
    x = torch.randn(rows, width, generator=generator)

    def work(autocast: bool):
        def run():
            for _ in range(steps):
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                    out = torch.nn.functional.linear(torch.nn.functional.linear(x, up).relu(), down)
                out.float().square().mean().backward()
        return run

    return _seconds(work(False)) / _seconds(work(True))


def _cache_file() -> Path:
    from plusrl.models.loader import cache_dir

    return cache_dir() / "precision.json"


def _machine_key() -> str:
    return f"{cpu_model()} | {cpu_kernels()} | torch {torch.__version__} | {torch.get_num_threads()} threads"


def cpu_bf16_speedup() -> float:
    """`measure_bf16_speedup` on this machine, measured once and cached per CPU, kernel level,
    torch version and thread count."""
    from plusrl.io import atomic_write_text

    path, key = _cache_file(), _machine_key()
    try:
        cached = json.loads(path.read_text())
    except (OSError, ValueError):
        cached = {}
    if key not in cached:
        cached[key] = round(measure_bf16_speedup(), 3)
        try:
            atomic_write_text(path, json.dumps(cached, indent=2))
        except OSError as error:  # a read-only home still trains; it measures again next time
            log.warning("could not cache the precision measurement in %s: %s", path, error)
    return cached[key]


def resolve_precision(precision: str, device: torch.device) -> PrecisionChoice:
    """'auto' | 'bf16' | 'fp32' → the precision to run in, with the reason."""
    if precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"precision must be auto, bf16 or fp32, got {precision!r}")
    if precision != "auto":
        return PrecisionChoice(precision, "bf16" if precision == "bf16" else "no", "asked for in the config")
    if device.type == "cuda":
        fast = torch.cuda.is_bf16_supported()
        return PrecisionChoice("auto", "bf16" if fast else "no",
                               f"{torch.cuda.get_device_name(device)}: bf16 {'supported' if fast else 'not supported'}")
    if device.type != "cpu":
        return PrecisionChoice("auto", "no", f"{device.type}: fp32 (bf16 is not measured on this device kind)")
    speedup = cpu_bf16_speedup()
    chosen = "bf16" if speedup >= BF16_MIN_SPEEDUP else "no"
    return PrecisionChoice("auto", chosen, f"{cpu_model()}, {cpu_kernels()}: bf16 autocast measured {speedup:.2f}x "
                                           f"fp32's speed (bf16 needs ≥ {BF16_MIN_SPEEDUP}x)")

