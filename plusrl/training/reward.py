"""Reward-model training for BTL, Oracle, ICL (Bradley-Terry, Eq. 3), DPL and VPL.

The methods differ only in the conditioning text put before each response
(`plusrl.models.conditioning`); the loop below is shared.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import replace
from pathlib import Path

import torch

from plusrl.config import ConfigError
from plusrl.data.registry import load_split
from plusrl.methods import MethodSpec, method_spec
from plusrl.models.conditioning import build_conditionings
from plusrl.models.reward_model import RewardModel, RewardModelConfig
from plusrl.progress import progress
from plusrl.run_dir import REWARD_MODEL
from plusrl.training.configs import RewardTrainConfig
from plusrl.training.losses import bradley_terry_loss, dpl_loss, gaussian_kl, preference_accuracy
from plusrl.training.checkpoint import finished
from plusrl.training.run_context import RunContext, adamw_updates

log = logging.getLogger(__name__)


def train_reward_model(cfg: RewardTrainConfig, resume: bool = False) -> Path:
    """Train a reward model, checkpointing atomically; returns the run folder (model in `model/`)."""
    spec = method_spec(cfg.method)
    ctx = RunContext(cfg, "step", resume)
    accelerator = ctx.accelerator
    if cfg.rm_optim.batch_size % accelerator.num_processes:
        raise ConfigError(f"rm_optim.batch_size={cfg.rm_optim.batch_size} does not split over "
                          f"{accelerator.num_processes} processes")

    # -- data: records and the method's conditioning text for each
    records = load_split(cfg.data.dataset, "train", cfg.data.context_type)
    if cfg.data.max_train_records:
        records = records[: cfg.data.max_train_records]
    conditionings = build_conditionings(cfg.method, records, cfg.data.prompts)

    # -- model, optimizer, schedule
    steps_per_epoch = math.ceil(len(records) / cfg.rm_optim.batch_size)
    total_steps = steps_per_epoch * cfg.rm_optim.epochs
    if resume and finished(ctx.run.path, total_steps):
        return ctx.run.path  # a finished run resumes to itself
    reward_model = RewardModel(method_model_config(spec, cfg.reward_model))
    updates = adamw_updates(reward_model, cfg.rm_optim, total_steps)
    forward, updates.optimizer, updates.scheduler = accelerator.prepare(reward_model, updates.optimizer,
                                                                        updates.scheduler)
    models, named_updates = {REWARD_MODEL: reward_model}, {"rm": updates}
    start_step = ctx.start(lambda ckpt: ctx.load(ckpt, models, named_updates))

    # -- training loop: each process takes its share of each global batch
    n_truncated, n_seen = 0, 0
    bar = progress(range(start_step, total_steps), initial=start_step, total=total_steps, desc=f"train {cfg.method}",
                   unit="step", leave=True, disable=not ctx.is_main)
    forward.train()
    for step in bar:
        epoch, index = divmod(step, steps_per_epoch)
        order = torch.randperm(len(records), generator=torch.Generator().manual_seed(cfg.seed * 1000 + epoch))
        ids = ctx.local_share(order[index * cfg.rm_optim.batch_size : (index + 1) * cfg.rm_optim.batch_size].tolist())
        batch = [records[i] for i in ids]
        cond = None if conditionings is None else [conditionings[i] for i in ids]

        enc = reward_model.encode_pairs(batch, cond)
        n_truncated, n_seen = n_truncated + enc.n_truncated, n_seen + 2 * len(batch)
        with accelerator.autocast():
            loss, r_chosen, r_rejected = pair_loss(spec, forward, reward_model, batch, enc, cfg.latent_kl_weight,
                                                  cfg.latent_noise_scale)
        stats = {"rm/loss": loss.item()}
        if not math.isfinite(stats["rm/loss"]):
            ctx.log(step, stats)  # raises TrainingDiverged, naming the last good checkpoint
        updates.step(accelerator, loss)

        if step % cfg.log_every == 0 or step == total_steps - 1:
            stats |= {"rm/accuracy": preference_accuracy(r_chosen, r_rejected).item(),
                      "rm/lr": updates.scheduler.get_last_lr()[0]}
            bar.set_postfix(loss=f"{stats['rm/loss']:.3f}", acc=f"{stats['rm/accuracy']:.2f}")
            ctx.log(step, stats)
        if (step + 1) % cfg.save_every == 0 or step == total_steps - 1:
            ctx.save(step + 1, models, named_updates)

    if n_truncated:
        log.warning("%d of %d reward-model inputs exceeded max_length=%d and were truncated", n_truncated, n_seen,
                    cfg.reward_model.max_length)
    ctx.finish()
    if ctx.is_main:
        (ctx.run.path / "train_summary.json").write_text(json.dumps(
            {"steps": total_steps, "truncated_inputs": n_truncated, "final_checkpoint": str(ctx.run.latest())}, indent=2))
    return ctx.run.path


def method_model_config(spec: MethodSpec, config: RewardModelConfig) -> RewardModelConfig:
    """DPL predicts a mean and a log-variance; VPL appends a user latent (512 as in App. H)."""
    if spec.loss == "dpl":
        return replace(config, n_outputs=2)
    if spec.loss == "vpl" and not config.latent_dim:
        return replace(config, latent_dim=512)
    return config


def pair_loss(spec: MethodSpec, forward, reward_model: RewardModel, batch, enc, latent_kl_weight: float = 0.0,
              latent_noise_scale: float = 1.0):
    """The method's training loss on a batch of pairs, and the rewards it gives chosen and rejected."""
    n = len(batch)
    latent, kl = None, 0.0
    if spec.loss == "vpl":  # reparameterised sample of z from the user's context
        mean, logvar = reward_model.user_latent(batch)
        z = mean + latent_noise_scale * torch.randn_like(mean) * (0.5 * logvar).exp()
        latent, kl = torch.cat([z, z]), gaussian_kl(mean, logvar)
    out = forward(enc, latent).float()
    if spec.loss == "dpl":
        loss = dpl_loss(out[:n, 0], out[:n, 1], out[n:, 0], out[n:, 1])
        return loss, out[:n, 0], out[n:, 0]
    return bradley_terry_loss(out[:n], out[n:]) + latent_kl_weight * kl, out[:n], out[n:]
