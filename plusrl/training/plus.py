"""PLUS: co-adaptation of the summarizer and the summary-conditioned reward model (Alg. 1).

Each iteration: sample N (context, pair) tuples → generate summaries z ~ π_θ(·|c) → reward
R = log σ(r(s_A|z) - r(s_B|z)) (Eq. 4) → token advantages (GAE, Eq. 5; or a group baseline)
→ M_θ PPO updates of the summarizer (Eq. 6) → M_φ Bradley-Terry updates of the reward model
on the same fresh summaries (Eq. 3).

The ablations are methods (plusrl.methods): `plus-untrained` freezes the summarizer;
`plus-static-rm` freezes the reward model at `reward_model_init` (Table 3).

`train_plus` is the loop, phase by phase; `build` does the setup; the phases are the
functions below it.
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from transformers import get_scheduler

from plusrl.config import ConfigError
from plusrl.data.registry import load_restatements, load_split
from plusrl.data.schema import Note, Record
from plusrl.eval.readability import readability_rate
from plusrl.methods import method_spec
from plusrl.models.conditioning import build_conditionings
from plusrl.models.reward_model import RewardModel
from plusrl.models.summarizer import Rollout, Summarizer
from plusrl.progress import progress
from plusrl.run_dir import REWARD_MODEL, SUMMARIZER, RunDir
from plusrl.training.configs import PlusConfig, PPOConfig
from plusrl.training.losses import (
    bradley_terry_loss,
    gae_advantages,
    group_advantages,
    kl_k1,
    masked_mean,
    normalize_advantages,
    ppo_clip_loss,
    preference_accuracy,
    summary_nll,
    summary_return,
    token_rewards,
    value_loss,
)
from plusrl.training.checkpoint import finished, run_folder
from plusrl.training.run_context import RunContext, Updates, adamw, adamw_updates, cosine_schedule, fused_adamw

log = logging.getLogger(__name__)


@dataclass
class PlusRun:
    """Everything Alg. 1 touches, built once by `build`."""

    cfg: PlusConfig
    ctx: RunContext
    records: list[Record]
    summarizer: Summarizer
    reward_model: RewardModel
    summarizer_forward: Any  # the models as the accelerator wrapped them (DDP when distributed)
    reward_forward: Any
    actor: Updates | None  # None: the summarizer stays frozen (PLUS-untrained)
    rm: Updates | None  # None: the reward model stays static
    restatements: Restatements | None  # the reading warm-up's examples, when it or its replay is on
    written_notes: WrittenNotes | None  # people's own notes for the reward model, when written_notes is on
    start: int

    @property
    def prompts(self) -> str:
        return self.cfg.data.prompts

    @property
    def models(self) -> dict[str, torch.nn.Module]:
        """What a checkpoint holds, by its folder."""
        return {SUMMARIZER: self.summarizer, REWARD_MODEL: self.reward_model}

    @property
    def updates(self) -> dict[str, Updates]:
        """The optimizers that run (a frozen model has none), by the name its checkpoint state uses."""
        return {name: u for name, u in (("actor", self.actor), ("rm", self.rm)) if u is not None}

    def checkpoint(self, iteration: int) -> None:
        self.ctx.save(iteration, self.models, self.updates)


def train_plus(cfg: PlusConfig, resume: bool = False) -> Path:
    """Alg. 1: co-train the summarizer π_θ and the summary-conditioned reward model r_φ."""
    if resume and finished(folder := run_folder(cfg.output_dir, cfg.data.dataset, cfg.method, resume), cfg.iterations):
        return folder  # a finished run resumes to itself (whatever has changed since in how optimizers are built)
    run = build(cfg, resume)
    accelerator, ppo = run.ctx.accelerator, cfg.ppo
    # 0. reading warm-up (optional): supervised restatements of people's own words, before iteration 0
    warmup = reading_warmup(run) if run.start == 0 and cfg.reading_warmup.steps else {}
    # 0b. reward-model warm-up (optional): Bradley-Terry steps on people's own notes, before iteration 0
    if run.start == 0 and cfg.written_notes.warmup_steps:
        warmup |= notes_warmup(run)
    bar = progress(range(run.start, cfg.iterations), initial=run.start, total=cfg.iterations, desc=cfg.method,
                   unit="iteration", leave=True, disable=not run.ctx.is_main)
    for iteration in bar:
        # 1. sample N (context, pair) tuples: the i-th slice of a per-seed, per-epoch order
        users = run.ctx.local_share(_sample_batch(run.records, iteration, cfg.rollout_batch_size, cfg.seed))

        # 2. generate summaries z ~ π_θ(·|c), `ppo.group` per context
        clock = time.perf_counter()
        prompt_ids, prompt_mask = run.summarizer.batch_prompts(users, run.prompts)
        with accelerator.autocast():  # π_old in the precision the PPO passes compute π_θ in: a ratio of 1 on-policy
            rollout = run.summarizer.generate(prompt_ids, prompt_mask, group=ppo.group, sample=True,
                                              with_values=ppo.advantage_estimator == "gae")
        pairs = [users[i] for i in rollout.prompt_index.tolist()]  # the (context, pair) of each summary

        # 3. return R = log σ(r(s_A|z) - r(s_B|z)) under the current reward model (Eq. 4)
        run.reward_model.eval()  # no dropout noise in the summarizer's reward
        with torch.no_grad(), accelerator.autocast():
            r_chosen, r_rejected = score_distinct(run.reward_model, pairs, rollout.texts, run.prompts)
        returns = summary_return(r_chosen, r_rejected, ppo.reward_clip)
        stats = rollout_stats(rollout, pairs, prompt_mask, r_chosen, r_rejected, returns)
        stats["time/generate_and_score"] = time.perf_counter() - clock

        # 4. KL to the reference policy (adapters off), which only shapes a PPO step: β = 0, or an
        #    iteration where the summarizer is still frozen, skips this pass and leaves it unmeasured
        clock = time.perf_counter()
        summarizer_moves = run.actor is not None and iteration >= cfg.freeze_summarizer_iterations
        kl = reference_kl(run, rollout, prompt_ids, prompt_mask) if ppo.kl_coef > 0 and summarizer_moves else None
        stats["time/reference"] = time.perf_counter() - clock
        if kl is not None:
            stats["policy/kl"] = kl.sum(1).mean().item()

        # 5. advantages: GAE over tokens with the critic (Eq. 5), or a group baseline
        advantages, value_targets = compute_advantages(ppo, rollout, returns, kl)

        # 6. M_θ PPO updates of the summarizer (Eq. 6), once the reward model has had its warm-up
        clock = time.perf_counter()
        if summarizer_moves:
            stats |= ppo_update(run, rollout, advantages, value_targets)
        stats["time/summarizer_update"] = time.perf_counter() - clock

        # 7. M_φ Bradley-Terry updates of the reward model on the same fresh summaries (Eq. 3)
        clock = time.perf_counter()
        if run.rm is not None:
            stats |= reward_update(run, pairs, rollout.texts, iteration)
        stats["time/reward_model_update"] = time.perf_counter() - clock

        # 8. log, example summaries, checkpoint
        run.ctx.log(iteration, stats | warmup)
        warmup = {}
        bar.set_postfix(R=f"{stats['reward/return']:.3f}", acc=f"{stats['rm/accuracy_before_update']:.2f}",
                        kl=f"{stats['policy/kl']:.3f}" if "policy/kl" in stats else "-",
                        len=f"{stats['summary/tokens']:.0f}",
                        readable=f"{stats['summary/readable']:.2f}" if "summary/readable" in stats else "-")
        if iteration % cfg.sample_every == 0:
            run.ctx.write_samples([{"iteration": iteration, "user_type": rec.meta.get("user_type"), "summary": text}
                                   for rec, text in list(zip(pairs, rollout.texts))[: 3 * ppo.group : ppo.group]])
        if (iteration + 1) % cfg.save_every == 0 or iteration == cfg.iterations - 1:
            run.checkpoint(iteration + 1)

    if run.summarizer.n_context_truncated:
        log.warning("%d summarizer prompts were over max_prompt_tokens=%d: oldest context items dropped",
                    run.summarizer.n_context_truncated, cfg.summarizer.max_prompt_tokens)
    run.ctx.finish()
    return run.ctx.run.path


# -- setup ----------------------------------------------------------------------------------------


def build(cfg: PlusConfig, resume: bool = False) -> PlusRun:
    """Data, both models, their optimizers and schedules, wrapped by the accelerator; restored
    from the newest checkpoint when resuming."""
    spec = method_spec(cfg.method)
    ctx = RunContext(cfg, "iteration", resume)
    records = load_split(cfg.data.dataset, "train", cfg.data.context_type)
    if cfg.data.max_train_records:
        records = records[: cfg.data.max_train_records]
    for name, size in (("rollout_batch_size", cfg.rollout_batch_size), ("ppo.minibatch_size", cfg.ppo.minibatch_size),
                       ("rm_optim.batch_size", cfg.rm_optim.batch_size)):
        if size % ctx.accelerator.num_processes:
            raise ConfigError(f"{name}={size} does not split over {ctx.accelerator.num_processes} processes")

    summarizer, reward_model = Summarizer(cfg.summarizer), RewardModel(cfg.reward_model)
    if cfg.reward_model_init:
        reward_model.load_trained(load_file(RunDir(cfg.reward_model_init).checkpoint() / REWARD_MODEL
                                            / RewardModel.weights_file))
    if not spec.train_summarizer:  # (a trained one keeps the grad flags its LoRA set: adapters and value head)
        summarizer.requires_grad_(False)
    if not spec.train_reward_model:
        reward_model.requires_grad_(False)
    n_summaries = cfg.rollout_batch_size * cfg.ppo.group
    written_notes = load_written_notes(cfg.written_notes.dataset, cfg.written_notes.rows, cfg.seed)
    n_written = written_notes.per_iteration if written_notes else 0
    actor = rm = None
    if spec.train_summarizer:
        ppo = cfg.ppo
        policy = summarizer.policy_parameters()
        groups = [{"params": policy, "lr": ppo.actor_lr}]
        if ppo.advantage_estimator == "gae":
            groups.append({"params": list(summarizer.value_head.parameters()), "lr": ppo.critic_lr})
        optimizer = fused_adamw(groups, betas=(ppo.adam_beta1, ppo.adam_beta2), weight_decay=0.0)
        steps = cfg.iterations * ppo.ppo_epochs * math.ceil(n_summaries / ppo.minibatch_size)
        actor = Updates(optimizer, cosine_schedule(optimizer, ppo.warmup_ratio, steps), policy, ppo.max_grad_norm)
    if spec.train_reward_model:
        passes = reward_passes(cfg, n_summaries, n_written)
        rm = adamw_updates(reward_model, cfg.rm_optim,
                           cfg.iterations * sum(math.ceil(len(rows) / cfg.rm_optim.batch_size) for rows in passes))
    reading = cfg.reading_warmup
    restatements = Restatements(load_restatements(reading.restatements), random.Random(f"reading-warmup/{cfg.seed}")) \
        if reading.steps or reading.replay_coef else None
    summarizer_forward, reward_forward = ctx.accelerator.prepare(summarizer, reward_model)
    run = PlusRun(cfg, ctx, records, summarizer, reward_model, summarizer_forward, reward_forward, actor, rm,
                  restatements, written_notes, 0)
    for updates in run.updates.values():
        updates.optimizer, updates.scheduler = ctx.accelerator.prepare(updates.optimizer, updates.scheduler)
    run.start = ctx.start(lambda ckpt: ctx.load(ckpt, run.models, run.updates))
    return run


# -- the phases of an iteration -------------------------------------------------------------------


def reading_warmup(run: PlusRun) -> dict:
    """Supervised steps on (a person's note, the summary restating it): the summarizer's LoRA learns
    to read people's own words ("Cats bore me; dogs never do.") before RL asks it to summarize
    them. Teacher-forced through the same prefix-cached pass as the PPO update."""
    warm, accelerator = run.cfg.reading_warmup, run.ctx.accelerator
    policy = run.summarizer.policy_parameters()
    updates = _constant_lr_updates(run, fused_adamw(policy, lr=warm.lr, weight_decay=0.0), policy,
                                   run.cfg.ppo.max_grad_norm)
    clock, losses = time.perf_counter(), []
    run.summarizer.train()
    for _ in progress(range(warm.steps), desc="reading warm-up", unit="step", disable=not run.ctx.is_main):
        loss = restatement_loss(run, warm.batch_size)
        updates.step(accelerator, loss)
        losses.append(loss.item())
    return {"warmup/loss_first": losses[0], "warmup/loss_last": losses[-1],
            "time/reading_warmup": time.perf_counter() - clock}


def notes_warmup(run: PlusRun) -> dict:
    """Bradley-Terry steps of the reward model on (pair, the user's own note) rows alone: it learns
    what a description of a preference is worth before it rewards the summarizer for writing one."""
    optim, accelerator = run.cfg.rm_optim, run.ctx.accelerator
    updates = _constant_lr_updates(run, *adamw(run.reward_model, optim), optim.max_grad_norm)
    draws = random.Random(f"notes-warmup/{run.cfg.seed}")
    clock, losses = time.perf_counter(), []
    run.reward_forward.train()
    for _ in progress(range(run.cfg.written_notes.warmup_steps), desc="notes warm-up", unit="step",
                      disable=not run.ctx.is_main):
        rows = run.ctx.local_share(draws.sample(run.written_notes.rows, optim.batch_size))
        with accelerator.autocast():
            r_c, r_r, _ = score_pairs(run.reward_model, run.reward_forward, [pair for pair, _ in rows],
                                      [note for _, note in rows], run.prompts)
        loss = bradley_terry_loss(r_c, r_r)
        updates.step(accelerator, loss)
        losses.append(loss.item())
    return {"notes_warmup/loss_first": losses[0], "notes_warmup/loss_last": losses[-1],
            "time/notes_warmup": time.perf_counter() - clock}


def _constant_lr_updates(run: PlusRun, optimizer: torch.optim.Optimizer, params: list, max_grad_norm: float) -> Updates:
    """A warm-up's own optimizer at a constant rate, apart from the run's schedules (which a resumed run restores)."""
    updates = Updates(optimizer, get_scheduler("constant", optimizer), params, max_grad_norm)
    updates.optimizer, updates.scheduler = run.ctx.accelerator.prepare(updates.optimizer, updates.scheduler)
    return updates


def restatement_loss(run: PlusRun, batch_size: int) -> torch.Tensor:
    """The summarizer's NLL of restating a batch of people's notes (the reading warm-up's loss)."""
    contexts, summaries = zip(*run.ctx.local_share(run.restatements.sample(batch_size)), strict=True)
    prompt_ids, prompt_mask = run.summarizer.batch_prompts(list(contexts), run.prompts)
    target_ids, target_mask = run.summarizer.target_ids(list(summaries))
    with run.ctx.accelerator.autocast():
        prefix = run.summarizer.prefill(prompt_ids, prompt_mask)
        logprobs, _ = run.summarizer_forward(prefix, torch.arange(len(contexts)), target_ids, target_mask)
        return summary_nll(logprobs, target_mask.float())


def load_written_notes(dataset: str, rows: int, seed: int) -> WrittenNotes | None:
    """(the pair the reward model trains on, the user's note) for each training user of `dataset`
    whose context holds a note, `rows` of them drawn per iteration; None for no dataset."""
    if not dataset:
        return None
    noted = []
    for record in load_split(dataset, "train", "pairs"):
        note = next((item for item in record.context if isinstance(item, Note)), None)
        if note is not None:
            noted.append((record.for_reward_model(), note.text))
    if not noted:
        raise ConfigError(f"written_notes.dataset={dataset!r}: no training user's context holds a note")
    return WrittenNotes(noted, min(rows, len(noted)), seed)


@dataclass
class WrittenNotes:
    """(pair, the user's own note) rows, and the ones each iteration's reward-model update takes."""

    rows: list[tuple[Record, str]]
    per_iteration: int
    seed: int

    def draw(self, iteration: int) -> list[tuple[Record, str]]:
        """Drawn from the seed and iteration alone, so a resumed run draws the same."""
        return random.Random(f"written-notes/{self.seed}/{iteration}").sample(self.rows, self.per_iteration)


@dataclass
class Restatements:
    """The reading warm-up's (note, summary) examples, drawn in an order fixed by the seed."""

    examples: list
    order: random.Random

    def sample(self, size: int) -> list:
        return self.order.sample(self.examples, size)


def _sample_batch(records, iteration: int, size: int, seed: int):
    """Iteration i takes the i-th slice of a per-epoch permutation: resumable from the index alone."""
    per_epoch = max(1, len(records) // size)
    epoch, index = divmod(iteration, per_epoch)
    order = torch.randperm(len(records), generator=torch.Generator().manual_seed(seed * 1000 + epoch)).tolist()
    return [records[i] for i in order[index * size : (index + 1) * size]]


def score_pairs(reward_model: RewardModel, forward, pairs: list[Record], summaries: list[str], prompts: str,
                with_head: bool = False):
    """Rewards of each pair's chosen and rejected response, conditioned on its summary; and the tokens read.
    `with_head`: each reward is a (total, head's part) pair of tensors."""
    enc = reward_model.encode_pairs(pairs, build_conditionings("plus", pairs, prompts, summaries,
                                                                  reward_model.config.summary_template))
    n, tokens = len(pairs), int(enc.attention_mask.sum())
    if with_head:
        rewards, head = (r.float() for r in forward(enc, with_head=True))
        return (rewards[:n], head[:n]), (rewards[n:], head[n:]), tokens
    rewards = forward(enc).float()
    return rewards[:n], rewards[n:], tokens


def score_distinct(reward_model: RewardModel, pairs: list[Record], summaries: list[str], prompts: str):
    """`score_pairs` for a model that scores without noise (eval mode), each distinct (pair, summary)
    once: a context's `group` summaries are often one text (about a third of a rollout's rows are
    distinct on the shipped Pets recipe), and the same row scores the same."""
    rows = list(zip(map(id, pairs), summaries))
    distinct = {row: i for i, row in enumerate(dict.fromkeys(rows))}
    record = {id(pair): pair for pair in pairs}
    r_chosen, r_rejected, _ = score_pairs(reward_model, reward_model, [record[key] for key, _ in distinct],
                                          [summary for _, summary in distinct], prompts)
    index = torch.tensor([distinct[row] for row in rows], device=r_chosen.device)
    return r_chosen[index], r_rejected[index]


def rollout_stats(rollout: Rollout, pairs: list[Record], prompt_mask: torch.Tensor, r_chosen, r_rejected,
                  returns) -> dict:
    """What an iteration's summaries look like. `summary/readable` (data whose users have a type) shows a
    drift into a private code while it happens: it falls as summaries stop stating the preference in words.
    `summary/distinct` is the share of different summaries: a collapse onto one sentence shows as a fall."""
    lengths = rollout.summary_mask.sum(1)
    readable = readability_rate(rollout.texts, pairs)
    return ({} if readable is None else {"summary/readable": readable}) | {
        "summary/distinct": len(set(rollout.texts)) / len(rollout.texts),
        "reward/return": returns.mean().item(),
        "rm/accuracy_before_update": preference_accuracy(r_chosen, r_rejected).item(),
        "summary/tokens": lengths.float().mean().item(),
        "summary/hit_token_limit": rollout.cut_at_limit.float().mean().item(),
        "summary/empty": sum(not t.strip() for t in rollout.texts) / len(rollout.texts),
        "tokens/prompt": int(prompt_mask.sum()),
        "tokens/summary": int(lengths.sum()),
    }


def reference_kl(run: PlusRun, rollout: Rollout, prompt_ids, prompt_mask) -> torch.Tensor:
    """Per-token k1 estimate log π_θ - log π_ref on the sampled summaries (0 after each EOS)."""
    with run.ctx.accelerator.autocast():
        reference = run.summarizer.reference_logprobs(rollout, prompt_ids, prompt_mask)
    return kl_k1(rollout.logprobs, reference) * rollout.summary_mask


def compute_advantages(ppo: PPOConfig, rollout: Rollout, returns: torch.Tensor, kl: torch.Tensor | None):
    """Token advantages, and the critic's value targets (GAE only)."""
    mask = rollout.summary_mask.float()
    kl = torch.zeros_like(mask) if kl is None else kl
    if ppo.advantage_estimator == "gae":
        rewards = token_rewards(returns, kl, mask, ppo.kl_coef)
        advantages, value_targets = gae_advantages(rewards, rollout.values, mask, ppo.gamma, ppo.lam)
        return normalize_advantages(advantages, mask), value_targets
    # rloo / grpo: KL folded into the sequence reward, baseline from the other summaries of the same context
    shaped = returns - ppo.kl_coef * kl.sum(1)
    return group_advantages(shaped, ppo.group, ppo.advantage_estimator)[:, None] * mask, None


def ppo_update(run: PlusRun, rollout: Rollout, advantages: torch.Tensor, value_targets: torch.Tensor | None) -> dict:
    """`ppo_epochs` passes of clipped-ratio steps (and clipped value steps with a critic) over the rollout."""
    ppo, accelerator = run.cfg.ppo, run.ctx.accelerator
    mask = rollout.summary_mask.float()
    replay_coef = run.cfg.reading_warmup.replay_coef
    replay_batch = run.cfg.reading_warmup.replay_batch_size or run.cfg.reading_warmup.batch_size
    totals = {"policy/loss": 0.0, "policy/clipfrac": 0.0, "policy/approx_kl": 0.0, "value/loss": 0.0} | (
        {"policy/replay_nll": 0.0} if replay_coef else {})
    n_steps = 0
    run.summarizer_forward.train()
    for _ in range(ppo.ppo_epochs):
        for idx in torch.randperm(len(rollout.texts)).split(max(1, ppo.minibatch_size // accelerator.num_processes)):
            with accelerator.autocast():
                logprobs, values = run.summarizer_forward(rollout.prefix, rollout.prompt_index[idx],
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
            if replay_coef:  # PPO-ptx's mix: keep the reading the warm-up taught
                replay = restatement_loss(run, replay_batch)
                loss = loss + replay_coef * replay
                totals["policy/replay_nll"] += replay.item()
            run.actor.step(accelerator, loss)
            with torch.no_grad():  # http://joschu.net/blog/kl-approx.html
                log_ratio = logprobs - rollout.logprobs[idx]
                totals["policy/approx_kl"] += masked_mean((log_ratio.exp() - 1) - log_ratio, m).item()
            totals["policy/loss"] += pg_loss.item()
            totals["policy/clipfrac"] += clipfrac.item()
            n_steps += 1
    stats = {k: v / n_steps for k, v in totals.items()}
    stats["policy/entropy_proxy"] = -masked_mean(rollout.logprobs, mask).item()
    stats["policy/lr"] = run.actor.scheduler.get_last_lr()[0]
    if value_targets is not None:
        residual = (value_targets - rollout.values)[mask.bool()]
        stats["value/explained_variance"] = (1 - residual.var() / value_targets[mask.bool()].var().clamp(min=1e-8)).item()
    return stats


def reward_passes(cfg: PlusConfig, n_summaries: int, n_notes: int) -> list[torch.Tensor]:
    """The rows of each pass of a reward-model update (summaries first, then notes): `rm_optim.epochs`
    passes over the summaries and `written_notes.epochs` (or as many) over the notes, shuffled
    together while both last."""
    note_epochs = (cfg.written_notes.epochs or cfg.rm_optim.epochs) if n_notes else 0
    summaries, notes = torch.arange(n_summaries), torch.arange(n_summaries, n_summaries + n_notes)
    return [torch.cat([summaries] * (epoch < cfg.rm_optim.epochs) + [notes] * (epoch < note_epochs))
            for epoch in range(max(cfg.rm_optim.epochs, note_epochs))]


def reward_update(run: PlusRun, pairs: list[Record], summaries: list[str], iteration: int) -> dict:
    """Passes of Bradley-Terry steps over the iteration's (pair, summary) rows, and (pair, note)
    rows of users who wrote a note when `written_notes` is on: their own words stand where a
    summary would, as a person's edit does in the service (`reward_passes` says how many of each)."""
    accelerator, optim = run.ctx.accelerator, run.cfg.rm_optim
    run.reward_forward.train()
    pairs = [record.for_reward_model() for record in pairs]
    n_summaries = len(pairs)
    if run.written_notes:
        mine = run.ctx.local_share(run.written_notes.draw(iteration))
        pairs, summaries = pairs + [pair for pair, _ in mine], [*summaries, *(note for _, note in mine)]
    head_coef = run.cfg.written_notes.head_loss_coef
    losses, tokens = [], 0
    for rows in reward_passes(run.cfg, n_summaries, len(pairs) - n_summaries):
        for idx in rows[torch.randperm(len(rows))].split(max(1, optim.batch_size // accelerator.num_processes)):
            with accelerator.autocast():
                (r_c, head_c), (r_r, head_r), n = score_pairs(run.reward_model, run.reward_forward, [pairs[i] for i in idx],
                                                              [summaries[i] for i in idx], run.prompts, with_head=True)
            loss = bradley_terry_loss(r_c, r_r)
            if head_coef and (is_note := idx >= n_summaries).any():  # WrittenNotesConfig.head_loss_coef
                loss = loss + head_coef * bradley_terry_loss(head_c[is_note], head_r[is_note])
            run.rm.step(accelerator, loss)
            losses.append(loss.item())
            tokens += n
    return {"rm/loss": sum(losses) / len(losses), "rm/lr": run.rm.scheduler.get_last_lr()[0],
            "tokens/reward_model": tokens}
