"""precision: auto takes bf16 only where this machine measured it faster, per CPU kind."""

import json
import math

import pytest
import torch

from plusrl.training import precision
from plusrl.training.precision import (
    BF16_MIN_SPEEDUP,
    cpu_bf16_speedup,
    measure_bf16_speedup,
    resolve_precision,
)

# bf16-autocast speed / fp32 speed of the workload, as measured on each kind of machine
CPU_KINDS = {
    "AMD EPYC, AVX2 only": (0.40, "fp32"),  # no bf16 kernels: oneDNN converts and falls back
    "Intel Xeon, AVX-512 without BF16": (0.93, "fp32"),  # oneDNN reports bf16 support but emulates it
    "AVX-512 BF16 / AMX": (3.27, "bf16"),
}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PLUSRL_CACHE", str(tmp_path))
    return tmp_path / "precision.json"


@pytest.mark.parametrize("kind", CPU_KINDS)
def test_auto_follows_the_measured_speed_on_each_cpu_kind(kind, cache, monkeypatch):
    speedup, expected = CPU_KINDS[kind]
    monkeypatch.setattr(precision, "measure_bf16_speedup", lambda: speedup)
    choice = resolve_precision("auto", torch.device("cpu"))
    assert choice.name == expected and choice.mixed_precision == ("bf16" if expected == "bf16" else "no")
    assert f"{speedup:.2f}x" in choice.reason and str(BF16_MIN_SPEEDUP) in choice.reason


def test_auto_on_a_gpu_asks_the_device(monkeypatch):
    for supported, expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda supported=supported: supported)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "a test GPU")
        choice = resolve_precision("auto", torch.device("cuda"))
        assert choice.name == expected and "a test GPU" in choice.reason


def test_an_explicit_precision_is_kept_and_a_bad_one_refused(monkeypatch):
    monkeypatch.setattr(precision, "measure_bf16_speedup", lambda: pytest.fail("nothing to measure"))
    assert resolve_precision("bf16", torch.device("cpu")).mixed_precision == "bf16"
    assert resolve_precision("fp32", torch.device("cpu")).mixed_precision == "no"
    with pytest.raises(ValueError, match="auto, bf16 or fp32"):
        resolve_precision("fp16", torch.device("cpu"))


def test_the_measurement_runs_once_per_machine_and_is_cached(cache, monkeypatch):
    calls = []
    monkeypatch.setattr(precision, "measure_bf16_speedup", lambda: calls.append(1) or 2.0)
    assert cpu_bf16_speedup() == cpu_bf16_speedup() == 2.0
    assert len(calls) == 1
    (key, value), = json.loads(cache.read_text()).items()
    assert value == 2.0 and torch.__version__ in key and precision.cpu_model() in key
    monkeypatch.setattr(precision, "_machine_key", lambda: "another CPU")  # another machine measures anew
    cpu_bf16_speedup()
    assert len(calls) == 2 and len(json.loads(cache.read_text())) == 2


def test_a_broken_cache_is_measured_again(cache, monkeypatch):
    cache.write_text("{not json")
    monkeypatch.setattr(precision, "measure_bf16_speedup", lambda: 0.5)
    assert cpu_bf16_speedup() == 0.5 and json.loads(cache.read_text())


def test_the_real_measurement_times_both_dtypes():
    ratio = measure_bf16_speedup(rows=64, width=256, hidden=512, steps=1)  # seconds per fp32 / per bf16
    assert math.isfinite(ratio) and ratio > 0
