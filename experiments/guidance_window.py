"""At which guidance weights does a trained run rank a set right? A diagnosis, never a way to
choose w (that is `plusrl calibrate` on validation sets).

    python experiments/guidance_window.py runs/notes/full/pets-notes-pairs-plus-seed3 --dataset pets-ood@test
    python experiments/guidance_window.py RUN --dataset pets-val-overturn@validation --dataset pets-val-agreed@validation

Summarizes each set NAME@SPLIT with the run's method (its summarizer, greedy, as evaluation does)
and prints its accuracy at each weight w of r̄ + w·(r − r̄), r̄ the reward under the training
users' texts, beside the w the run chose (its guidance.json).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from plusrl.eval.guidance import RunConditionings, pair_accuracy_by_weight
from plusrl.run_dir import Guidance, RunDir

WEIGHTS = (0.0, 0.5, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 5.0, 10.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--dataset", action="append", help="NAME@SPLIT (repeatable; default pets-ood@test)")
    args = parser.parse_args()
    run = RunDir(args.run_dir)
    guidance = Guidance.load(run.guidance_file)
    conditionings = RunConditionings(run)
    model = run.reward_model().eval()
    model.use_guidance(1.0, [])  # score unguided: accuracy_by_weight applies each w itself
    for spec in args.dataset or ["pets-ood@test"]:
        accuracy = pair_accuracy_by_weight(model, conditionings, spec, guidance.population, WEIGHTS)
        print(f"{args.run_dir.name} {spec}, chosen w = {guidance.weight}:",
              ", ".join(f"w={w}: {100 * a:.1f}" for w, a in accuracy.items()), flush=True)


if __name__ == "__main__":
    main()
