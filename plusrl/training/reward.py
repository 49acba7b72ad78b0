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
from typing import Literal

import torch

from plusrl.config import ConfigError
from plusrl.data.prompts import family
from plusrl.data.registry import load_split
from plusrl.methods import MethodSpec, method_spec
from plusrl.models.conditioning import build_conditionings
from plusrl.models.reward_model import RewardModel, RewardModelConfig
from plusrl.progress import progress
from plusrl.run_dir import REWARD_MODEL
from plusrl.training.losses import bradley_terry_loss, dpl_loss, gaussian_kl, preference_accuracy
from plusrl.training.run_context import RunContext, adamw_updates, check_tracker_installed

log = logging.getLogger(__name__)


@dataclass
class DataConfig:
    dataset: str = "pets"
    """Built-in name (pets, pets-ood) or path to local files with train/test splits."""
    eval_datasets: list[str] | None = None
    """Datasets whose `test` split (or "NAME@SPLIT") is evaluated after training; None: the
    training dataset's own test split; []: none."""
    max_train_records: int = 0
    """Use only the first N training records (0 = all): for quick runs."""
    max_eval_records: int = 0
    """Evaluate only the first N test records (0 = all)."""
    context_type: Literal["pairs", "guideline", "conversation"] = "pairs"
    """How each user's context is given (Table 4)."""
    calibration_datasets: list[str] = field(default_factory=list)
    """Validation sets ("NAME@SPLIT") on which the guidance weight w of r̄ + w·(r − r̄) is chosen
    before the first evaluation (plusrl.eval.guidance: the largest w that loses no pair there
    against w = 1). For methods that condition on text; []: score with the model as trained."""
    prompt_family: Literal["auto", "pets", "generic"] = "auto"
    """Which prompts (App. I/J) the summarizer and ICL read: pets (one-sentence animal facts) or
    generic; auto picks pets for datasets named pets* (and their proxy- twins), else generic."""

    def __post_init__(self):
        if self.max_train_records < 0 or self.max_eval_records < 0:
            raise ValueError("max_train_records and max_eval_records count records: 0 (all) or more")

    @property
    def evaluated(self) -> list[str]:
        return [self.dataset] if self.eval_datasets is None else self.eval_datasets

    @property
    def prompts(self) -> str:
        """The prompt family the data is read with."""
        return family(self.dataset) if self.prompt_family == "auto" else self.prompt_family


@dataclass
class OptimConfig:
    lr: float = 5e-5
    batch_size: int = 32
    """Global batch of preference pairs, split across processes."""
    epochs: int = 1
    """Passes over the training data (PLUS: over each iteration's fresh summaries)."""
    warmup_ratio: float = 0.03
    max_grad_norm: float = 1.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95
    weight_decay: float = 0.0

    def __post_init__(self):
        if self.lr <= 0 or self.batch_size < 1 or self.epochs < 1:
            raise ValueError(f"lr must be > 0 and batch_size, epochs ≥ 1 (got {self.lr}, {self.batch_size}, {self.epochs})")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio is a share of the steps in [0, 1), got {self.warmup_ratio}")


@dataclass
class RewardTrainConfig:
    method: Literal["btl", "oracle", "icl", "dpl", "vpl"] = "btl"
    """A reward-model-only method of plusrl.methods.METHODS."""
    output_dir: str = ""
    """Run folder; empty means runs/<dataset>-<method>."""
    seed: int = 0
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    """auto: bf16 where the hardware runs it fast, else fp32."""
    report_to: Literal["tensorboard", "wandb", "mlflow", "none"] = "tensorboard"
    """Where metrics go besides metrics.jsonl, through accelerate's trackers (wandb and mlflow
    must be installed; tensorboard writes to <run>/tb)."""
    log_every: int = 10
    save_every: int = 50
    """Checkpoint every N optimizer steps (and at the end)."""
    latent_kl_weight: float = 0.01
    """VPL: weight of KL(q(z | context) || N(0, I)) in the loss."""
    latent_noise_scale: float = 1e-3
    """VPL: z = μ + scale·σ·ε while training. VPL's authors scale ε by 1e-3 (their
    `reparameterization`); at 1 the noise of 512 latent dimensions buries μ, the decoder learns
    to ignore z and the posterior collapses to the prior."""
    data: DataConfig = field(default_factory=DataConfig)
    model: RewardModelConfig = field(default_factory=RewardModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)

    def __post_init__(self):
        check_tracker_installed(self.report_to)
        if self.latent_kl_weight < 0 or self.latent_noise_scale < 0:
            raise ValueError(f"latent_kl_weight and latent_noise_scale must be >= 0, "
                             f"not {self.latent_kl_weight} and {self.latent_noise_scale}")


def train_reward_model(cfg: RewardTrainConfig, resume: bool = False) -> Path:
    """Train a reward model, checkpointing atomically; returns the run folder (model in `model/`)."""
    spec = method_spec(cfg.method)
    ctx = RunContext(cfg, "step", resume)
    accelerator = ctx.accelerator
    if cfg.optim.batch_size % accelerator.num_processes:
        raise ConfigError(f"optim.batch_size={cfg.optim.batch_size} does not split over "
                          f"{accelerator.num_processes} processes")

    # -- data: records and the method's conditioning text for each
    records = load_split(cfg.data.dataset, "train", cfg.data.context_type)
    if cfg.data.max_train_records:
        records = records[: cfg.data.max_train_records]
    conditionings = build_conditionings(cfg.method, records, cfg.data.prompts)

    # -- model, optimizer, schedule
    reward_model = RewardModel(method_model_config(spec, cfg.model))
    steps_per_epoch = math.ceil(len(records) / cfg.optim.batch_size)
    total_steps = steps_per_epoch * cfg.optim.epochs
    updates = adamw_updates(reward_model, cfg.optim, total_steps)
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
        ids = ctx.local_share(order[index * cfg.optim.batch_size : (index + 1) * cfg.optim.batch_size].tolist())
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
                    cfg.model.max_length)
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
