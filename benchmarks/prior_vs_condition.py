"""Can the conditioning text overrule the population prior without breaking it where it is right?

Pets-OOD users prefer rabbits to birds, against the ranking every training user shares (birds
first, rabbits last). A reward model trained on Pets has two parts in effect: what every user
rewards alike (the prior) and what depends on the user's text. This benchmark turns the second
up (`guided_reward`, classifier-free guidance read for rewards) and measures what that buys and
costs:

    r_w(s | c) = r̄(s) + w · (r(s | c) − r̄(s)),    r̄(s) = mean over training users c' of r(s | c')

w = 1 is the reward model as trained. w is calibrated per run on validation sets only: the
largest w of the grid that loses no pair, against w = 1, on `pets-val-agreed` (the prior is
right: dogs/cats users scored on birds vs their own animal) and `pets-val` (new animals, no
prior). `pets-val-prior` (the text says "over birds": the prior is wrong) is shown for every w.
Pets, Pets-OOD and edit-following are measured at w = 1 and at the calibrated w only: they
choose nothing.

    python benchmarks/prior_vs_condition.py --run runs/s8/full/pets-pairs-oracle-seed0 [--run …]
"""

from __future__ import annotations

import argparse
import json

import torch

from plusrl.data.prompts import summary_conditioning
from plusrl.data.registry import load_split
from plusrl.eval.accuracy import score_responses
from plusrl.eval.readability import PROMPT, edit_cases
from plusrl.methods import method_spec
from plusrl.models.conditioning import build_conditionings
from plusrl.run_dir import RunDir
from plusrl.training.losses import guided_reward

GRID = [1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 5.0, float("inf")]
CALIBRATION = ["pets-val-agreed", "pets-val"]  # the prior is right / absent: w may not cost a pair here
SHOWN = ["pets-val-prior"]  # the prior is wrong: what w buys, shown, not used to choose
TESTS = [("pets", "test"), ("pets-ood", "test")]


def pair_accuracy(rewards: torch.Tensor) -> float:
    """% of pairs ranked right; rewards are the chosen rows, then the rejected rows."""
    n = len(rewards) // 2
    return round(100 * (rewards[:n] > rewards[n:]).float().mean().item(), 1)


def calibrated_weight(validation: dict[str, dict[float, float]]) -> float:
    """The largest w of the grid, scanning up from 1, before any calibration set loses a pair
    against w = 1. ({"a": {1: 100, 2: 100, 3: 90}}) → 2."""
    chosen = GRID[0]
    for w in GRID[1:]:
        if any(acc[w] < acc[GRID[0]] for acc in validation.values()):
            break
        chosen = w
    return chosen


def measure(run_dir: str, reference_users: int) -> dict:
    run = RunDir(run_dir)
    cfg, model = run.config(), run.reward_model()
    spec = method_spec(cfg.method)
    summarizer = run.summarizer() if spec.has_summarizer else None
    prompts = cfg.data.prompts

    def conditionings(records):
        summaries = summarizer.summarize(records, prompts) if summarizer is not None else None
        return build_conditionings(cfg.method, records, prompts, summaries)

    references = list(dict.fromkeys(conditionings(load_split(cfg.data.dataset, "train")[:reference_users])))

    def own_and_population(conds, prompts_, responses):
        own = score_responses(model, conds, prompts_, responses)
        population = torch.stack([score_responses(model, [c] * len(responses), prompts_, responses)
                                  for c in references]).mean(0)
        return own, population

    def pairs(dataset, split):
        records = load_split(dataset, split)
        return own_and_population(conditionings(records) * 2, [r.prompt for r in records] * 2,
                                  [r.chosen for r in records] + [r.rejected for r in records])

    validation = {}
    for name in CALIBRATION + SHOWN:
        own, population = pairs(name, "validation")
        validation[name] = {w: pair_accuracy(guided_reward(own, population, w)) for w in GRID}
    w = calibrated_weight({name: validation[name] for name in CALIBRATION})
    result = {"run": run_dir, "method": cfg.method, "reference_conditionings": len(references), "calibrated_w": w,
              "validation": {name: {str(k): v for k, v in acc.items()} for name, acc in validation.items()}}
    for dataset, split in TESTS:
        own, population = pairs(dataset, split)
        result[dataset] = {str(k): pair_accuracy(guided_reward(own, population, k)) for k in (1.0, w)}
    cases = edit_cases()
    as_written = summary_conditioning if spec.conditioning == "summary" else str
    own, population = own_and_population([as_written(c.statement) for c in cases] * 2, [PROMPT] * 2 * len(cases),
                                         [c.liked_fact for c in cases] + [c.other_fact for c in cases])
    result["edit_following"] = {str(k): pair_accuracy(guided_reward(own, population, k)) for k in (1.0, w)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", action="append", required=True, help="a trained run folder (repeat for seeds)")
    parser.add_argument("--reference-users", type=int, default=16,
                        help="training users whose conditioning texts make r̄ (distinct texts are kept once)")
    args = parser.parse_args()
    for run_dir in args.run:
        print(json.dumps(measure(run_dir, args.reference_users)), flush=True)


if __name__ == "__main__":
    main()
