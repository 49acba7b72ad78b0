"""Held-out reward-model accuracy: the share of pairs with r(chosen | c) > r(rejected | c)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from plusrl.data.schema import Record
from plusrl.eval.readability import readability_rate
from plusrl.io import atomic_write_text
from plusrl.models.reward_model import RewardModel
from plusrl.progress import progress


@torch.no_grad()
def score_pairs(
    model: RewardModel, records: list[Record], conditionings: list[str] | None, batch_size: int = 64, desc: str = "eval"
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Rewards of chosen and rejected responses for every record, plus the truncation count."""
    model.eval()
    chosen, rejected, n_truncated = [], [], 0
    for start in progress(range(0, len(records), batch_size), desc=desc, unit="batch"):
        batch = records[start : start + batch_size]
        cond = None if conditionings is None else conditionings[start : start + batch_size]
        enc = model.encode_pairs(batch, cond)
        rewards = model.expected_reward(enc, batch).float().cpu()  # chosen rows, then rejected rows
        chosen.append(rewards[: len(batch)])
        rejected.append(rewards[len(batch) :])
        n_truncated += enc.n_truncated
    chosen, rejected = torch.cat(chosen), torch.cat(rejected)
    if conditionings is not None:  # guided over the whole set at once: r̄ scores each distinct response once
        guided = model.guide(torch.cat([chosen, rejected]), [r.prompt for r in records] * 2,
                             [r.chosen for r in records] + [r.rejected for r in records])
        chosen, rejected = guided.split(len(records))
    return chosen, rejected, n_truncated


@torch.no_grad()
def score_responses(model: RewardModel, conditionings: list[str] | None, prompts: list[str], responses: list[str],
                    batch_size: int = 64, desc: str = "scoring") -> torch.Tensor:
    """Rewards of free-form responses (e.g. generated ones) under each conditioning text."""
    model.eval()
    out = []
    for start in progress(range(0, len(prompts), batch_size), desc=desc, unit="batch"):
        end = start + batch_size
        cond = None if conditionings is None else conditionings[start:end]
        out.append(model.score(cond, prompts[start:end], responses[start:end]).float().cpu())
    return torch.cat(out)


def evaluate(
    model: RewardModel,
    records: list[Record],
    conditionings: list[str] | None,
    out_dir: Path,
    name: str,
    summaries: list[str] | None = None,
    batch_size: int = 64,
) -> dict:
    """Score every pair, write `{name}.json` (metrics) and `{name}.predictions.jsonl` (per pair)."""
    r_chosen, r_rejected, n_truncated = score_pairs(model, records, conditionings, batch_size, desc=f"eval {name}")
    correct = r_chosen > r_rejected
    metrics = {
        "dataset": name,
        "accuracy": correct.float().mean().item(),
        "n_pairs": len(records),
        "mean_margin": (r_chosen - r_rejected).mean().item(),
        "n_truncated_inputs": n_truncated,
    }
    if conditionings is not None:  # the w these scores were guided with (1: the reward model as trained)
        metrics["guidance_weight"] = model.guidance_weight
    if summaries is not None and (rate := readability_rate(summaries, records)) is not None:
        metrics["readable_summaries"] = rate
    lines = []
    for i, rec in enumerate(records):
        row = {
            "user_id": rec.user_id,
            "correct": bool(correct[i]),
            "reward_chosen": r_chosen[i].item(),
            "reward_rejected": r_rejected[i].item(),
            "summary": None if summaries is None else summaries[i],
            "conditioning": None if conditionings is None else conditionings[i],
            "meta": rec.meta,
        }
        lines.append(json.dumps(row))
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / f"{name}.predictions.jsonl", "\n".join(lines) + "\n")
    atomic_write_text(out_dir / f"{name}.json", json.dumps(metrics, indent=2))
    return metrics
