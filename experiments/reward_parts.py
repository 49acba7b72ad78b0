"""Which part of the reward reads a person's note: the head, or the similarity term?

    python experiments/reward_parts.py RUN            # the edit check's validation and test wordings
    python experiments/reward_parts.py RUN --bf16     # in bf16 autocast, as the run's evals are read

A PLUS reward model with a similarity term scores r(s | c) = head([c; s]) + w_sim·cos(embed(c), embed(s))
(plusrl.models.reward_model), and the edit check reads it guided, r̄ + w·(r − r̄). For each wording of the
edit check, this prints the share of cases read right (guided, as the check reads them), and the mean
margin, liked fact minus the other, of each part: the head, the similarity term and the population reward
r̄. A wording read by one part alone is read by one reader; a part whose margin is near 0 on every
wording does not read notes at all. Nothing is written to the run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from plusrl.data.pets import PROMPT
from plusrl.eval.readability import edit_cases
from plusrl.run_dir import RunDir
from plusrl.training.losses import guided_reward


@torch.no_grad()
def reward_parts(model, texts: list[str], responses: list[str], batch_size: int = 64):
    """(head, similarity term, population reward r̄) of each (conditioning text, response)."""
    heads, totals = [], []
    for start in range(0, len(texts), batch_size):
        rows = slice(start, start + batch_size)
        batch = model.encode(texts[rows], [PROMPT] * len(responses[rows]), responses[rows])
        total, head = model(batch, with_head=True)
        totals.append(total.float().cpu())
        heads.append(head.float().cpu())
    head, total = torch.cat(heads), torch.cat(totals)
    population = model.population_reward(model.population, [PROMPT] * len(responses), responses) \
        if model.population else torch.zeros_like(total)
    return head, total - head, population


def report(model, validation: bool) -> None:
    cases = edit_cases(validation=validation)
    n = len(cases)
    texts = [model.as_conditioning(c.statement) for c in cases] * 2
    head, similarity, population = reward_parts(model, texts, [c.liked_fact for c in cases] + [c.other_fact for c in cases])
    guided = guided_reward(head + similarity, population, model.guidance_weight)
    right = guided[:n] > guided[n:]
    margins = {name: part[:n] - part[n:] for name, part in
               (("head", head), ("similarity", similarity), ("population", population))}
    print(f"--- {'validation' if validation else 'test'} wordings (w = {model.guidance_weight}): "
          "read right %, mean margin of head / similarity term / population reward")
    for template in dict.fromkeys(c.template for c in cases):
        rows = torch.tensor([c.template == template for c in cases])
        parts = " / ".join(f"{m[rows].mean():+.2f}" for m in margins.values())
        print(f"  {100 * right[rows].float().mean():5.1f}  {parts}  {template}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a trained PLUS run whose reward model has a similarity term")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (where the CPU runs it fast)")
    args = parser.parse_args()
    model = RunDir(args.run).reward_model()
    model.eval()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
        for validation in (True, False):
            report(model, validation)


if __name__ == "__main__":
    main()
