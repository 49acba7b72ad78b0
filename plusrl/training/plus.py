"""PLUS: co-adaptation of the summarizer and the summary-conditioned reward model (Alg. 1).

Each iteration: sample N (context, pair) tuples → generate summaries z ~ π_θ(·|c) → reward
R = log σ(r(s_A|z) - r(s_B|z)) (Eq. 4) → token advantages (GAE, Eq. 5; or a group baseline)
→ M_θ PPO updates of the summarizer (Eq. 6) → M_φ Bradley-Terry updates of the reward model
on the same fresh summaries (Eq. 3).

Ablations are flags: `train_summarizer=false` is PLUS-untrained; `train_reward_model=false`
with `reward_model_init` is "summarizer trained / reward model static" (Table 3).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from safetensors.torch import load_file
from tqdm.auto import tqdm
from transformers import get_scheduler

from plusrl.config import to_yaml
from plusrl.data.registry import load_split
from plusrl.models.conditioning import build_conditionings
from plusrl.models.reward_model import RewardModel, RewardModelConfig
from plusrl.models.summarizer import Rollout, Summarizer, SummarizerConfig
from plusrl.training.checkpoint import (
    forget_log_rows_from,
    latest_checkpoint,
    run_folder,
    save_checkpoint,
)
from plusrl.training.losses import (
    bradley_terry_loss,
    gae_advantages,
    group_advantages,
    kl_k1,
    masked_mean,
    normalize_advantages,
    ppo_clip_loss,
    preference_accuracy,
    summary_return,
    token_rewards,
    value_loss,
)
from plusrl.training.reward import DataConfig, OptimConfig, TrainingDiverged
from plusrl.training.runtime import (
    resolve_precision,
    rng_state,
    seed_everything,
    set_rng_state,
)

log = logging.getLogger(__name__)


@dataclass
class PPOConfig:
    """Summarizer RL; defaults follow PLUS App. H Table 11 except where a recipe says otherwise."""

    advantage_estimator: str = "gae"
    """gae (PPO with critic, as the paper) | rloo | grpo (several summaries per context, no critic)"""
    group_size: int = 4
    """Summaries per context for rloo / grpo."""
    gamma: float = 1.0
    lam: float = 0.95
    clip_eps: float = 0.2
    kl_coef: float = 0.001
    """β of the k1 KL penalty to the reference (0.01 or 0.001 in the paper; 0.001 for Pets)."""
    reward_clip: float = 10.0
    value_coef: float = 0.5
    value_clip: float = 0.2
    ppo_epochs: int = 1
    minibatch_size: int = 8
    """Summaries per PPO gradient step (global)."""
    actor_lr: float = 5e-7
    critic_lr: float = 9e-7
    warmup_ratio: float = 0.03
    max_grad_norm: float = 1.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95


@dataclass
class PlusConfig:
    method: str = "plus"
    """plus | plus-untrained | plus-static-rm (the flags below decide what trains; the name labels results)"""
    output_dir: str = ""
    seed: int = 0
    precision: str = "auto"
    iterations: int = 20
    rollout_batch_size: int = 32
    """N: (context, pair) tuples per iteration (global)."""
    train_summarizer: bool = True
    train_reward_model: bool = True
    reward_model_init: str = ""
    """Run folder of a trained reward model to start from (needed when it stays static)."""
    rm_epochs: int = 1
    """Passes of M_φ Bradley-Terry steps over each iteration's fresh summaries."""
    rm_minibatch_size: int = 16
    log_every: int = 1
    sample_every: int = 5
    """Write example summaries to samples.jsonl every K iterations."""
    save_every: int = 5
    data: DataConfig = field(default_factory=DataConfig)
    summarizer: SummarizerConfig = field(default_factory=SummarizerConfig)
    reward_model: RewardModelConfig = field(default_factory=RewardModelConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    rm_optim: OptimConfig = field(default_factory=OptimConfig)


def train_plus(cfg: PlusConfig, resume: bool = False) -> Path:
    run_dir = run_folder(cfg.output_dir, cfg.data.dataset, cfg.method, resume)
    if not cfg.train_reward_model and not cfg.reward_model_init:
        raise ValueError("a static reward model (train_reward_model=false) needs reward_model_init=<run folder>")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    accelerator = Accelerator(mixed_precision=resolve_precision(cfg.precision, device), log_with="tensorboard",
                              project_dir=str(run_dir))
    seed_everything(cfg.seed)
    dataset = cfg.data.dataset
    records = load_split(dataset, "train", cfg.data.context_type)
    if cfg.data.max_train_records:
        records = records[: cfg.data.max_train_records]
    group = cfg.ppo.group_size if cfg.ppo.advantage_estimator in ("rloo", "grpo") else 1

    # -- models and optimizers
    summarizer = Summarizer(cfg.summarizer)
    reward_model = RewardModel(cfg.reward_model)
    if cfg.reward_model_init:
        reward_model.load_trained(load_file(latest_checkpoint(Path(cfg.reward_model_init)) / "model" / "model.safetensors"))
    if not cfg.train_summarizer:
        summarizer.requires_grad_(False)
    if not cfg.train_reward_model:
        reward_model.requires_grad_(False)
    n_rollouts = cfg.rollout_batch_size * group
    actor_params = [p for n, p in summarizer.named_parameters() if p.requires_grad and not n.startswith("value_head")]
    rm_params = [p for p in reward_model.parameters() if p.requires_grad]
    optimizers, schedulers = {}, {}
    if cfg.train_summarizer:
        groups = [{"params": actor_params, "lr": cfg.ppo.actor_lr}]
        if cfg.ppo.advantage_estimator == "gae":
            groups.append({"params": list(summarizer.value_head.parameters()), "lr": cfg.ppo.critic_lr})
        optimizers["actor"] = torch.optim.AdamW(groups, betas=(cfg.ppo.adam_beta1, cfg.ppo.adam_beta2), weight_decay=0.0)
        steps = cfg.iterations * cfg.ppo.ppo_epochs * math.ceil(n_rollouts / cfg.ppo.minibatch_size)
        schedulers["actor"] = get_scheduler("cosine", optimizers["actor"], math.ceil(cfg.ppo.warmup_ratio * steps), steps)
    if cfg.train_reward_model:
        optimizers["rm"] = torch.optim.AdamW(rm_params, lr=cfg.rm_optim.lr,
                                             betas=(cfg.rm_optim.adam_beta1, cfg.rm_optim.adam_beta2))
        steps = cfg.iterations * cfg.rm_epochs * math.ceil(n_rollouts / cfg.rm_minibatch_size)
        schedulers["rm"] = get_scheduler("cosine", optimizers["rm"], math.ceil(cfg.rm_optim.warmup_ratio * steps), steps)
    summarizer_ddp, reward_ddp = accelerator.prepare(summarizer, reward_model)
    optimizers = {k: accelerator.prepare(v) for k, v in optimizers.items()}
    schedulers = {k: accelerator.prepare(v) for k, v in schedulers.items()}

    start = 0
    if resume and (ckpt := latest_checkpoint(run_dir)) is not None:
        start = _load_state(ckpt, summarizer, reward_model, optimizers, schedulers)
        accelerator.print(f"resumed from {ckpt} at iteration {start}/{cfg.iterations}")
        if accelerator.is_main_process:
            for log_file in ("metrics.jsonl", "samples.jsonl"):
                forget_log_rows_from(run_dir / log_file, "iteration", start)
    if accelerator.is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(to_yaml(cfg))
    accelerator.init_trackers("tb")

    per_process = max(1, cfg.rollout_batch_size // accelerator.num_processes)
    bar = tqdm(range(start, cfg.iterations), initial=start, total=cfg.iterations, desc=cfg.method,
               disable=not accelerator.is_main_process)
    for iteration in bar:
        # 1. sample N tuples of contexts and preference pairs (a fixed order per seed and epoch)
        batch = _sample_batch(records, iteration, cfg.rollout_batch_size, cfg.seed)
        contexts = batch[accelerator.process_index * per_process : (accelerator.process_index + 1) * per_process]

        # 2. generate summaries z ~ π_θ(·|c); rloo/grpo: `group` summaries per context
        clock = time.perf_counter()
        prompts = summarizer.batch_prompts(contexts, dataset)
        rollout = summarizer.generate(*prompts, group=group, sample=True,
                                      with_values=cfg.ppo.advantage_estimator == "gae")
        batch = [contexts[i] for i in rollout.prompt_index.tolist()]

        # 3. rewards (Eq. 4) from the current reward model, then advantages (Eq. 5)
        reward_model.eval()  # no dropout noise in the summarizer's reward
        with torch.no_grad(), accelerator.autocast():
            r_chosen, r_rejected, _ = _score(reward_model, reward_model, batch, rollout.texts, dataset)
        returns_ = summary_return(r_chosen, r_rejected, cfg.ppo.reward_clip)
        stats = {
            "reward/return": returns_.mean().item(),
            "rm/accuracy_before_update": preference_accuracy(r_chosen, r_rejected).item(),
            "summary/tokens": rollout.summary_mask.sum(1).float().mean().item(),
            "summary/hit_token_limit": (rollout.summary_mask.sum(1) == rollout.summary_mask.shape[1]).float().mean().item(),
            "summary/empty": sum(not t.strip() for t in rollout.texts) / len(rollout.texts),
            "tokens/prompt": int(prompts[1].sum()),
            "tokens/summary": int(rollout.summary_mask.sum()),
            "time/generate_and_score": time.perf_counter() - clock,
        }

        # 4. M_θ PPO updates of the summarizer
        clock = time.perf_counter()
        if cfg.train_summarizer:
            stats |= _ppo_update(cfg.ppo, accelerator, summarizer, summarizer_ddp, optimizers["actor"],
                                 schedulers["actor"], actor_params, rollout, prompts, returns_, group)

        stats["time/summarizer_update"] = time.perf_counter() - clock

        # 5. M_φ Bradley-Terry updates of the reward model on the same fresh summaries
        clock = time.perf_counter()
        if cfg.train_reward_model:
            stats |= _reward_update(cfg, accelerator, reward_model, reward_ddp, optimizers["rm"], schedulers["rm"],
                                    rm_params, batch, rollout.texts, dataset)

        stats["time/reward_model_update"] = time.perf_counter() - clock

        # -- logging, samples, checkpoints
        for key, value in stats.items():
            if not math.isfinite(value):
                raise TrainingDiverged(f"{key} became {value} at iteration {iteration}; "
                                       f"last good checkpoint: {latest_checkpoint(run_dir) or 'none'}")
        bar.set_postfix(R=f"{stats['reward/return']:.3f}", acc=f"{stats['rm/accuracy_before_update']:.2f}",
                        kl=f"{stats.get('policy/kl', 0.0):.3f}", len=f"{stats['summary/tokens']:.0f}")
        if iteration % cfg.log_every == 0:
            accelerator.log(stats, step=iteration)
        if accelerator.is_main_process:
            with (run_dir / "metrics.jsonl").open("a") as f:
                f.write(json.dumps({"iteration": iteration, **stats}) + "\n")
            if iteration % cfg.sample_every == 0:
                with (run_dir / "samples.jsonl").open("a") as f:
                    for rec, text in list(zip(batch, rollout.texts))[: 3 * group : group]:
                        f.write(json.dumps({"iteration": iteration, "user_type": rec.meta.get("user_type"),
                                            "summary": text}) + "\n")
        if (iteration + 1) % cfg.save_every == 0 or iteration == cfg.iterations - 1:
            accelerator.wait_for_everyone()
            if accelerator.is_main_process:
                save_checkpoint(run_dir, iteration + 1, lambda d, done=iteration + 1: _write_state(
                    d, summarizer, reward_model, optimizers, schedulers, done))

    if summarizer.n_context_truncated:
        log.warning("%d summarizer prompts were over max_prompt_tokens=%d: oldest context items dropped",
                    summarizer.n_context_truncated, cfg.summarizer.max_prompt_tokens)
    accelerator.end_training()
    return run_dir


def _sample_batch(records, iteration: int, size: int, seed: int):
    """Iteration i takes the i-th slice of a per-epoch permutation: resumable from the index alone."""
    per_epoch = max(1, len(records) // size)
    epoch, index = divmod(iteration, per_epoch)
    order = torch.randperm(len(records), generator=torch.Generator().manual_seed(seed * 1000 + epoch)).tolist()
    return [records[i] for i in order[index * size : (index + 1) * size]]


def _score(reward_model: RewardModel, forward, batch, summaries: list[str], dataset: str):
    """Rewards of chosen and rejected responses conditioned on each record's summary."""
    cond = build_conditionings("plus", batch, dataset, summaries)
    enc = reward_model.encode_pairs(batch, cond)
    rewards = forward(enc).float()
    return rewards[: len(batch)], rewards[len(batch) :], int(enc.attention_mask.sum())


def _ppo_update(ppo: PPOConfig, accelerator, summarizer: Summarizer, summarizer_ddp, optimizer, scheduler, params,
                rollout: Rollout, prompts, returns_: torch.Tensor, group: int) -> dict:
    mask = rollout.summary_mask.float()
    kl = torch.zeros_like(mask)
    clock = time.perf_counter()
    if ppo.kl_coef > 0:  # β = 0 skips the reference pass: a third of a CPU step
        with accelerator.autocast():
            kl = kl_k1(rollout.logprobs, summarizer.reference_logprobs(rollout, *prompts)) * mask
    reference_seconds = time.perf_counter() - clock
    if ppo.advantage_estimator == "gae":
        rewards = token_rewards(returns_, kl, mask, ppo.kl_coef)
        advantages, value_targets = gae_advantages(rewards, rollout.values, mask, ppo.gamma, ppo.lam)
        advantages = normalize_advantages(advantages, mask)
    else:  # KL folded into the sequence reward, baseline from the other summaries of the same context
        shaped = returns_ - ppo.kl_coef * kl.sum(1)
        advantages = group_advantages(shaped, group, ppo.advantage_estimator)[:, None] * mask
        value_targets = None

    n = len(rollout.texts)
    mb = max(1, ppo.minibatch_size // accelerator.num_processes)
    totals = {"policy/loss": 0.0, "policy/clipfrac": 0.0, "policy/approx_kl": 0.0, "value/loss": 0.0}
    n_steps = 0
    summarizer_ddp.train()
    for _ in range(ppo.ppo_epochs):
        for idx in torch.randperm(n).split(mb):
            with accelerator.autocast():
                logprobs, values = summarizer_ddp(rollout.prefix, rollout.prompt_index[idx],
                                                  rollout.summary_ids[idx], rollout.summary_mask[idx])
            m = mask[idx]
            pg_loss, clipfrac = ppo_clip_loss(logprobs, rollout.logprobs[idx], advantages[idx], m, ppo.clip_eps)
            loss = pg_loss
            if value_targets is not None:
                v_loss = value_loss(values, rollout.values[idx], value_targets[idx], m, ppo.value_clip)
                loss = loss + ppo.value_coef * v_loss
                totals["value/loss"] += v_loss.item()
            else:
                loss = loss + 0.0 * values.sum()  # keep the value head in the graph for DDP
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(params, ppo.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            with torch.no_grad():  # http://joschu.net/blog/kl-approx.html
                log_ratio = logprobs - rollout.logprobs[idx]
                totals["policy/approx_kl"] += masked_mean((log_ratio.exp() - 1) - log_ratio, m).item()
            totals["policy/loss"] += pg_loss.item()
            totals["policy/clipfrac"] += clipfrac.item()
            n_steps += 1
    stats = {k: v / n_steps for k, v in totals.items()}
    stats["policy/kl"] = (kl.sum(1)).mean().item()
    stats["time/reference"] = reference_seconds
    stats["policy/entropy_proxy"] = -masked_mean(rollout.logprobs, mask).item()
    stats["policy/lr"] = scheduler.get_last_lr()[0]
    if value_targets is not None:
        residual = (value_targets - rollout.values)[mask.bool()]
        stats["value/explained_variance"] = (1 - residual.var() / value_targets[mask.bool()].var().clamp(min=1e-8)).item()
    return stats


def _reward_update(cfg: PlusConfig, accelerator, reward_model: RewardModel, reward_ddp, optimizer, scheduler, params,
                   batch, summaries: list[str], dataset: str) -> dict:
    reward_ddp.train()
    mb = max(1, cfg.rm_minibatch_size // accelerator.num_processes)
    losses, tokens = [], 0
    for _ in range(cfg.rm_epochs):
        for idx in torch.randperm(len(batch)).split(mb):
            with accelerator.autocast():
                r_c, r_r, n = _score(reward_model, reward_ddp, [batch[i] for i in idx], [summaries[i] for i in idx],
                                     dataset)
            loss = bradley_terry_loss(r_c, r_r)
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(params, cfg.rm_optim.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            losses.append(loss.item())
            tokens += n
    return {"rm/loss": sum(losses) / len(losses), "rm/lr": scheduler.get_last_lr()[0], "tokens/reward_model": tokens}


def _write_state(folder: Path, summarizer, reward_model, optimizers: dict, schedulers: dict, iteration: int) -> None:
    summarizer.save(folder / "summarizer")
    reward_model.save(folder / "model")
    torch.save({"iteration": iteration, "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
                "schedulers": {k: s.state_dict() for k, s in schedulers.items()}, "rng": rng_state()},
               folder / "trainer_state.pt")


def _load_state(folder: Path, summarizer, reward_model, optimizers: dict, schedulers: dict) -> int:
    summarizer.load_trained(load_file(folder / "summarizer" / "summarizer.safetensors"))
    reward_model.load_trained(load_file(folder / "model" / "model.safetensors"))
    state = torch.load(folder / "trainer_state.pt", weights_only=False)
    for key, optimizer in optimizers.items():
        optimizer.load_state_dict(state["optimizers"][key])
    for key, scheduler in schedulers.items():
        scheduler.load_state_dict(state["schedulers"][key])
    set_rng_state(state["rng"])
    return state["iteration"]
