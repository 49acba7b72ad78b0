"""Can the conditioning text overrule the population prior without breaking it where it is right?

Pets-OOD users prefer rabbits to birds, against the ranking every training user shares (birds
first, rabbits last). A reward model trained on Pets has two parts in effect: what every user
rewards alike (the prior) and what depends on the user's text. This experiment turns the second
up (`guided_reward`, classifier-free guidance read for rewards) and measures what that buys and
costs:

    r_w(s | c) = r̄(s) + w · (r(s | c) − r̄(s)),    r̄(s) = mean over training users c' of r(s | c')

w = 1 is the reward model as trained. w is calibrated per run on validation sets only, by
`plusrl.eval.guidance`'s rule (the largest w of its grid that loses no pair against w = 1) on
`pets-val-agreed` (the prior is right: dogs/cats users scored on birds vs their own animal) and
`pets-val` (new animals, no prior). `pets-val-prior` (the text says "over birds": the prior is
wrong) is shown for every w. Pets, Pets-OOD and edit-following are measured at w = 1 and at the
calibrated w only: they choose nothing. Nothing is written to the run (`plusrl calibrate` does
that).

    python experiments/prior_vs_condition.py --run runs/pets/full/pets-pairs-oracle-seed0 [--run …]
"""

from __future__ import annotations

import argparse
import json

from plusrl.eval.guidance import RunConditionings, accuracy_by_weight, calibrated_weight, pair_accuracy_by_weight
from plusrl.eval.readability import PROMPT, edit_cases
from plusrl.run_dir import RunDir

CALIBRATION = ["pets-val-agreed@validation", "pets-val@validation"]  # the prior is right / absent
SHOWN = ["pets-val-prior@validation"]  # the prior is wrong: what w buys, shown, not used to choose
TESTS = ["pets@test", "pets-ood@test"]


def measure(run_dir: str) -> dict:
    run = RunDir(run_dir)
    conditionings = RunConditionings(run)
    model = run.reward_model().eval()
    model.use_guidance(1.0, [])
    population = conditionings.population()
    validation = {spec: pair_accuracy_by_weight(model, conditionings, spec, population) for spec in CALIBRATION + SHOWN}
    w = calibrated_weight({spec: validation[spec] for spec in CALIBRATION})
    result = {"run": run_dir, "method": conditionings.cfg.method, "population": len(population), "calibrated_w": w,
              "validation": validation}
    for spec in TESTS:
        result[spec] = pair_accuracy_by_weight(model, conditionings, spec, population, (1.0, w))
    cases = edit_cases()
    as_written = model.as_conditioning if conditionings.summarizer is not None else str
    result["edit_following"] = accuracy_by_weight(model, [as_written(c.statement) for c in cases], [PROMPT] * len(cases),
                                                  [c.liked_fact for c in cases], [c.other_fact for c in cases],
                                                  population, (1.0, w))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", action="append", required=True, help="a trained run folder (repeat for seeds)")
    args = parser.parse_args()
    for run_dir in args.run:
        print(json.dumps(measure(run_dir)), flush=True)


if __name__ == "__main__":
    main()
