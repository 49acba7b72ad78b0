"""The scaffold both trainers share: run folder, Accelerator, seeding, resume, config.yaml,
trackers, metrics.jsonl and atomic checkpoints of models, optimizers, schedulers and RNG."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from transformers import get_scheduler

from plusrl.config import to_yaml
from plusrl.run_dir import TRAINER_STATE, RunDir
from plusrl.training.checkpoint import forget_log_rows_from, run_folder, save_checkpoint
from plusrl.training.precision import resolve_precision
from plusrl.training.runtime import rng_state, seed_everything, set_rng_state


class TrainingDiverged(RuntimeError):
    pass


@dataclass
class Updates:
    """An optimizer, its schedule and the parameters it clips: one kind of gradient step."""

    optimizer: torch.optim.Optimizer
    scheduler: Any
    params: list[torch.nn.Parameter]
    max_grad_norm: float

    def step(self, accelerator: Accelerator, loss: torch.Tensor) -> None:
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(self.params, self.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad()


def cosine_schedule(optimizer, warmup_ratio: float, total_steps: int):
    """Linear warm-up over the first `warmup_ratio` of the steps, then cosine decay."""
    return get_scheduler("cosine", optimizer, math.ceil(warmup_ratio * total_steps), total_steps)


def fused_adamw(params, **hyperparameters) -> torch.optim.AdamW:
    """torch's AdamW, fused: every trainer's optimizer. One kernel a step instead of a temporary per
    operation and tensor; the same update to float rounding, ~5x faster on 2 CPU cores for MiniLM's
    22.6M weights (0.084 s -> 0.016 s a step, 3 % of the Pets co-training step in fp32; docs/performance.md)."""
    return torch.optim.AdamW(params, fused=True, **hyperparameters)


def adamw(model: torch.nn.Module, optim) -> tuple[torch.optim.AdamW, list[torch.nn.Parameter]]:
    """AdamW over a model's trainable weights as an OptimConfig says (all but its schedule), and those weights."""
    params = [p for p in model.parameters() if p.requires_grad]
    return fused_adamw(params, lr=optim.lr, betas=(optim.adam_beta1, optim.adam_beta2),
                       weight_decay=optim.weight_decay), params


def adamw_updates(model: torch.nn.Module, optim, total_steps: int) -> Updates:
    """AdamW over a model's trainable weights as an OptimConfig says (every field honoured)."""
    optimizer, params = adamw(model, optim)
    return Updates(optimizer, cosine_schedule(optimizer, optim.warmup_ratio, total_steps), params, optim.max_grad_norm)


def _flat(config: dict, prefix: str = "") -> dict:
    """{'ppo': {'kl_coef': 0.1}} → {'ppo.kl_coef': 0.1}: what trackers show as hyperparameters."""
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out |= _flat(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value if isinstance(value, (int, float, str, bool)) else str(value)
    return out


class RunContext:
    """One training run's folder and process group. `step_key` names the counter in its logs
    ("iteration" for PLUS, "step" for reward models)."""

    def __init__(self, cfg, step_key: str, resume: bool):
        self.cfg, self.step_key, self.resume = cfg, step_key, resume
        self.run = RunDir(run_folder(cfg.output_dir, cfg.data.dataset, cfg.method, resume))
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.precision = resolve_precision(cfg.precision, device)
        # cpu=True on a machine without GPUs: what lets accelerate see several launched CPU processes (gloo)
        self.accelerator = Accelerator(cpu=device.type == "cpu", mixed_precision=self.precision.mixed_precision,
                                       log_with=None if cfg.report_to == "none" else cfg.report_to,
                                       project_dir=str(self.run.path))
        seed_everything(cfg.seed)

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    def local_share(self, items: list) -> list:
        """This process's slice of a global batch."""
        per_process = max(1, len(items) // self.accelerator.num_processes)
        return items[self.accelerator.process_index * per_process : (self.accelerator.process_index + 1) * per_process]

    def start(self, load: Callable[[Path], int]) -> int:
        """Resume from the newest checkpoint when asked (`load` restores it and returns the step it
        had reached; log rows written after it are dropped), write config.yaml, open trackers."""
        start = 0
        if self.resume and (ckpt := self.run.latest()) is not None:
            start = load(ckpt)
            self.accelerator.print(f"resumed from {ckpt} at {self.step_key} {start}")
            if self.is_main:
                for log_file in (self.run.metrics_file, self.run.samples_file):
                    forget_log_rows_from(log_file, self.step_key, start)
        if self.is_main:
            self.run.path.mkdir(parents=True, exist_ok=True)
            # the config as it ran: `auto` precision saved as what it resolved to, and why
            ran = dataclasses.replace(self.cfg, precision=self.precision.name)
            self.run.config_file.write_text(f"# precision {self.precision.requested} → {self.precision.name}: "
                                            f"{self.precision.reason}\n{to_yaml(ran)}")
        self.accelerator.print(f"precision {self.precision.requested} → {self.precision.name}: {self.precision.reason}")
        if self.accelerator.num_processes > 1:
            self.accelerator.print(f"{self.accelerator.num_processes} processes, {self.accelerator.distributed_type.value}")
        if self.cfg.report_to == "tensorboard":
            self.accelerator.init_trackers("tb")  # <run>/tb
        elif self.cfg.report_to != "none":
            self.accelerator.init_trackers(f"plusrl-{self.cfg.method}", config=_flat(dataclasses.asdict(self.cfg)))
        return start

    def log(self, step: int, stats: dict) -> None:
        """Stop on a NaN/inf (naming the last good checkpoint), else log to the trackers and metrics.jsonl."""
        for key, value in stats.items():
            if not math.isfinite(value):
                raise TrainingDiverged(f"{key} became {value} at {self.step_key} {step}; "
                                       f"last good checkpoint: {self.run.latest() or 'none'}")
        self.accelerator.log(stats, step=step)
        if self.is_main:
            with self.run.metrics_file.open("a") as f:
                f.write(json.dumps({self.step_key: step, **stats}) + "\n")

    def write_samples(self, rows: list[dict]) -> None:
        if self.is_main:
            with self.run.samples_file.open("a") as f:
                f.writelines(json.dumps(row) + "\n" for row in rows)

    def save(self, step: int, models: dict[str, torch.nn.Module], updates: dict[str, Updates]) -> None:
        """Atomic checkpoint `step-N/`: each model's trained weights in its folder, and the trainer
        state (each optimizer and schedule by name, the RNG)."""
        self.accelerator.wait_for_everyone()
        if self.is_main:
            def write(folder: Path) -> None:
                for name, model in models.items():
                    model.save(folder / name)
                torch.save({self.step_key: step, "optimizers": {k: u.optimizer.state_dict() for k, u in updates.items()},
                            "schedulers": {k: u.scheduler.state_dict() for k, u in updates.items()},
                            "rng": rng_state()}, folder / TRAINER_STATE)

            save_checkpoint(self.run.path, step, write)

    def load(self, folder: Path, models: dict[str, torch.nn.Module], updates: dict[str, Updates]) -> int:
        """Restore what `save` wrote; returns the step it had reached."""
        from safetensors.torch import load_file

        for name, model in models.items():
            model.load_trained(load_file(folder / name / model.weights_file))
        state = torch.load(folder / TRAINER_STATE, weights_only=False)
        for key, u in updates.items():
            u.optimizer.load_state_dict(state["optimizers"][key])
            u.scheduler.load_state_dict(state["schedulers"][key])
        set_rng_state(state["rng"])
        return state[self.step_key]

    def finish(self) -> None:
        self.accelerator.end_training()
