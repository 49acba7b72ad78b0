"""The reward model's update with torch's dropout masks against plusrl.models.cpu_dropout's, side by
side in one process (alternating, so both see the same machine state).

    python benchmarks/reward_model_dropout.py [--recipe recipes/pets/plus.yaml] [--precision fp32|bf16]
                                              [--repeats 3]

One pass is what the recipe's reward-model update does once an iteration: Bradley-Terry steps with
AdamW over `rollout_batch_size × group` summary rows and `written_notes.rows` note rows, in batches
of `rm_optim.batch_size` (Pets' training pairs, with one-sentence summaries and the users' notes).
Prints each pass's seconds for both masks.
"""

from __future__ import annotations

import argparse
import random
import time
from unittest import mock

import torch

from plusrl.config import load_config
from plusrl.data.registry import load_split
from plusrl.models import reward_model as reward_model_module
from plusrl.models.reward_model import RewardModel
from plusrl.training.configs import PlusConfig
from plusrl.training.losses import bradley_terry_loss
from plusrl.training.plus import load_written_notes, score_pairs
from plusrl.training.precision import cpu_kernels, cpu_model
from plusrl.training.run_context import adamw


def update_rows(cfg: PlusConfig) -> list[tuple]:
    """(pair, conditioning text) rows of one iteration's update: summaries of sampled users, then notes."""
    rng = random.Random(0)
    pairs = [record.for_reward_model() for record in load_split(cfg.data.dataset, "train", "pairs")]
    summaries = [(rng.choice(pairs), rng.choice(["The user prefers dogs.", "The user prefers cats."]))
                 for _ in range(cfg.rollout_batch_size * cfg.ppo.group)]
    notes = load_written_notes(cfg.written_notes.dataset, cfg.written_notes.rows, cfg.seed)
    return summaries + (list(notes.draw(0)) if notes else [])


def timed_pass(model: RewardModel, optimizer, rows: list[tuple], cfg: PlusConfig, bf16: bool) -> float:
    model.train()
    order = random.Random(1).sample(rows, len(rows))
    start = time.perf_counter()
    for first in range(0, len(order), cfg.rm_optim.batch_size):
        pairs, texts = zip(*order[first : first + cfg.rm_optim.batch_size])
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            r_chosen, r_rejected, _ = score_pairs(model, model, list(pairs), list(texts), cfg.data.prompts)
        bradley_terry_loss(r_chosen, r_rejected).backward()
        optimizer.step()
        optimizer.zero_grad()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="recipes/pets/plus.yaml")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cfg = load_config(PlusConfig, args.recipe, [])
    rows = update_rows(cfg)
    models = {"cpu_dropout masks": RewardModel(cfg.reward_model)}
    with mock.patch.object(reward_model_module, "use_cpu_dropout", lambda backbone: None):
        models["torch's masks"] = RewardModel(cfg.reward_model)
    optimizers = {name: adamw(model, cfg.rm_optim)[0] for name, model in models.items()}
    print(f"CPU: {cpu_model()}; kernels: {cpu_kernels()}; torch {torch.__version__}; threads={torch.get_num_threads()}")
    print(f"{args.recipe}: {len(rows)} rows a pass in batches of {cfg.rm_optim.batch_size}, {args.precision}")
    seconds = {name: [] for name in models}
    for repeat in range(args.repeats + 1):  # the first pass of each warms up
        for name, model in models.items():
            elapsed = timed_pass(model, optimizers[name], rows, cfg, args.precision == "bf16")
            if repeat:
                seconds[name].append(elapsed)
    for name, times in seconds.items():
        print(f"{name:>18}: {' '.join(f'{t:.2f}' for t in times)} s a pass (mean {sum(times) / len(times):.2f})")


if __name__ == "__main__":
    main()
