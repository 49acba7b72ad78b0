"""Reward-model training for BTL, Oracle, ICL (Bradley-Terry, Eq. 3), DPL and VPL.

The methods differ only in the conditioning text put before each response
(`plusrl.models.conditioning`); the loop below is shared.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm
from transformers import get_scheduler

from plusrl.config import to_yaml
from plusrl.data.registry import load_split
from plusrl.models.conditioning import build_conditionings
from plusrl.models.reward_model import RewardModel, RewardModelConfig
from plusrl.training.checkpoint import (
    forget_log_rows_from,
    latest_checkpoint,
    run_folder,
    save_checkpoint,
)
from plusrl.training.losses import (
    bradley_terry_loss,
    dpl_loss,
    gaussian_kl,
    preference_accuracy,
)
from plusrl.training.runtime import (
    resolve_precision,
    rng_state,
    seed_everything,
    set_rng_state,
)

log = logging.getLogger(__name__)


@dataclass
class DataConfig:
    dataset: str = "pets"
    """Built-in name (pets, pets-ood) or path to local files with train/test splits."""
    eval_datasets: list[str] = field(default_factory=lambda: ["pets"])
    """Datasets whose `test` split is evaluated after training."""
    max_train_records: int = 0
    """Use only the first N training records (0 = all): for quick runs."""
    max_eval_records: int = 0
    """Evaluate only the first N test records (0 = all)."""
    context_type: str = "pairs"
    """How each user's context is given (Table 4): pairs | guideline | conversation."""


@dataclass
class OptimConfig:
    lr: float = 5e-5
    batch_size: int = 32
    """Global batch of preference pairs, split across processes."""
    epochs: int = 1
    warmup_ratio: float = 0.03
    max_grad_norm: float = 1.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95
    weight_decay: float = 0.0


@dataclass
class RewardTrainConfig:
    method: str = "btl"
    """btl | oracle | icl | dpl | vpl"""
    output_dir: str = ""
    """Run folder; empty means runs/<dataset>-<method>."""
    seed: int = 0
    precision: str = "auto"
    """auto (bf16 where the hardware runs it fast) | bf16 | fp32"""
    log_every: int = 10
    save_every: int = 50
    """Checkpoint every N optimizer steps (and at the end)."""
    latent_kl_weight: float = 0.01
    """VPL: weight of KL(q(z | context) || N(0, I)) in the loss."""
    data: DataConfig = field(default_factory=DataConfig)
    model: RewardModelConfig = field(default_factory=RewardModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)


class TrainingDiverged(RuntimeError):
    pass


def train_reward_model(cfg: RewardTrainConfig, resume: bool = False) -> Path:
    """Train a reward model, checkpointing atomically; returns the run folder (model in `model/`)."""
    run_dir = run_folder(cfg.output_dir, cfg.data.dataset, cfg.method, resume)
    accelerator = Accelerator(
        mixed_precision=resolve_precision(cfg.precision, torch.device("cuda" if torch.cuda.is_available() else "cpu")),
        log_with="tensorboard",
        project_dir=str(run_dir),
    )
    seed_everything(cfg.seed)

    # -- data: records and the method's conditioning text for each
    records = load_split(cfg.data.dataset, "train", cfg.data.context_type)
    if cfg.data.max_train_records:
        records = records[: cfg.data.max_train_records]
    conditionings = build_conditionings(cfg.method, records, cfg.data.dataset)

    # -- model, optimizer, schedule
    model = RewardModel(method_model_config(cfg.method, cfg.model))
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        trainable, lr=cfg.optim.lr, betas=(cfg.optim.adam_beta1, cfg.optim.adam_beta2), weight_decay=cfg.optim.weight_decay
    )
    steps_per_epoch = math.ceil(len(records) / cfg.optim.batch_size)
    total_steps = steps_per_epoch * cfg.optim.epochs
    scheduler = get_scheduler(
        "cosine", optimizer, num_warmup_steps=math.ceil(cfg.optim.warmup_ratio * total_steps), num_training_steps=total_steps
    )
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    reward_model: RewardModel = accelerator.unwrap_model(model)

    start_step = 0
    if resume and (ckpt := latest_checkpoint(run_dir)) is not None:
        start_step = _load_checkpoint(ckpt, reward_model, optimizer, scheduler)
        accelerator.print(f"resumed from {ckpt} at step {start_step}/{total_steps}")
        if accelerator.is_main_process:
            forget_log_rows_from(run_dir / "metrics.jsonl", "step", start_step)
    if accelerator.is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(to_yaml(cfg))
    accelerator.init_trackers("tb")

    # -- training loop: each process takes its share of each global batch
    per_process = max(1, cfg.optim.batch_size // accelerator.num_processes)
    n_truncated, n_seen = 0, 0
    bar = tqdm(range(start_step, total_steps), initial=start_step, total=total_steps, desc=f"train {cfg.method}",
               disable=not accelerator.is_main_process)
    model.train()
    for step in bar:
        epoch, index = divmod(step, steps_per_epoch)
        order = torch.randperm(len(records), generator=torch.Generator().manual_seed(cfg.seed * 1000 + epoch))
        global_batch = order[index * cfg.optim.batch_size : (index + 1) * cfg.optim.batch_size].tolist()
        ids = global_batch[accelerator.process_index * per_process : (accelerator.process_index + 1) * per_process]
        batch = [records[i] for i in ids]
        cond = None if conditionings is None else [conditionings[i] for i in ids]

        enc = reward_model.encode_pairs(batch, cond)
        n_truncated, n_seen = n_truncated + enc.n_truncated, n_seen + 2 * len(batch)
        with accelerator.autocast():
            loss, r_chosen, r_rejected = pair_loss(cfg.method, model, reward_model, batch, enc, cfg.latent_kl_weight)
        if not torch.isfinite(loss):
            last = latest_checkpoint(run_dir)
            raise TrainingDiverged(f"loss became {loss.item()} at step {step}; last good checkpoint: {last or 'none'}")
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(trainable, cfg.optim.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()

        if step % cfg.log_every == 0 or step == total_steps - 1:
            acc = preference_accuracy(r_chosen, r_rejected).item()
            bar.set_postfix(loss=f"{loss.item():.3f}", acc=f"{acc:.2f}")
            row = {"rm/loss": loss.item(), "rm/accuracy": acc, "rm/lr": scheduler.get_last_lr()[0]}
            accelerator.log(row, step=step)
            if accelerator.is_main_process:
                with (run_dir / "metrics.jsonl").open("a") as f:
                    f.write(json.dumps({"step": step, **row}) + "\n")
        if (step + 1) % cfg.save_every == 0 or step == total_steps - 1:
            accelerator.wait_for_everyone()
            if accelerator.is_main_process:
                save_checkpoint(run_dir, step + 1, lambda d, done=step + 1: _write_checkpoint(d, reward_model, optimizer, scheduler, done))

    if n_truncated:
        log.warning("%d of %d reward-model inputs exceeded max_length=%d and were truncated", n_truncated, n_seen,
                    cfg.model.max_length)
    accelerator.end_training()
    if accelerator.is_main_process:
        final = latest_checkpoint(run_dir)
        (run_dir / "train_summary.json").write_text(json.dumps({"steps": total_steps, "truncated_inputs": n_truncated,
                                                                 "final_checkpoint": str(final)}, indent=2))
    return run_dir


def method_model_config(method: str, config: RewardModelConfig) -> RewardModelConfig:
    """DPL predicts a mean and a log-variance; VPL appends a user latent (512 as in App. H)."""
    if method == "dpl":
        return replace(config, n_outputs=2)
    if method == "vpl" and not config.latent_dim:
        return replace(config, latent_dim=512)
    return config


def pair_loss(method: str, forward, reward_model: RewardModel, batch, enc, latent_kl_weight: float = 0.0):
    """The method's training loss on a batch of pairs, and the rewards it gives chosen and rejected."""
    n = len(batch)
    latent, kl = None, 0.0
    if reward_model.user_encoder is not None:  # VPL: reparameterised sample of z from the user's context
        mean, logvar = reward_model.user_latent(batch)
        z = mean + torch.randn_like(mean) * (0.5 * logvar).exp()
        latent, kl = torch.cat([z, z]), gaussian_kl(mean, logvar)
    out = forward(enc, latent).float()
    if method == "dpl":
        loss = dpl_loss(out[:n, 0], out[:n, 1], out[n:, 0], out[n:, 1])
        return loss, out[:n, 0], out[n:, 0]
    return bradley_terry_loss(out[:n], out[n:]) + latent_kl_weight * kl, out[:n], out[n:]


def _write_checkpoint(folder: Path, model: RewardModel, optimizer, scheduler, step: int) -> None:
    model.save(folder / "model")
    torch.save(
        {"step": step, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng_state()},
        folder / "trainer_state.pt",
    )


def _load_checkpoint(folder: Path, model: RewardModel, optimizer, scheduler) -> int:
    from safetensors.torch import load_file

    model.load_trained(load_file(folder / "model" / "model.safetensors"))
    state = torch.load(folder / "trainer_state.pt", weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"])
    return state["step"]


def load_trained_reward_model(run_dir: Path) -> RewardModel:
    ckpt = latest_checkpoint(run_dir)
    if ckpt is None:
        raise FileNotFoundError(f"{run_dir}: no checkpoint found (train first: plusrl train ...)")
    return RewardModel.load(ckpt / "model")
