"""At which guidance weights does a trained run rank a held-out set right? A diagnosis, never a
way to choose w (that is `plusrl calibrate` on validation sets).

    python experiments/guidance_window.py runs/notes/full/pets-notes-pairs-plus-seed3 --dataset pets-ood

Scores the run's saved evaluation summaries of DATASET (eval/DATASET.predictions.jsonl) with the
run's reward model at each weight w of r̄ + w·(r − r̄), r̄ the reward under the training users'
texts (the run's guidance.json), and prints the accuracy at each w beside the w the run chose.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from plusrl.data.registry import load_split
from plusrl.eval.guidance import accuracy_by_weight
from plusrl.run_dir import RunDir

WEIGHTS = (0.0, 0.5, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 5.0, 10.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--dataset", default="pets-ood", help="an evaluated dataset of the run (its test split)")
    args = parser.parse_args()
    run = RunDir(args.run_dir)
    guidance = json.loads(run.guidance_file.read_text())
    predictions = args.run_dir / "eval" / f"{args.dataset}.predictions.jsonl"
    conditioning = {row["user_id"]: row["conditioning"] for row in map(json.loads, predictions.read_text().splitlines())}
    records = [r for r in load_split(args.dataset, "test") if r.user_id in conditioning]
    conditionings = [conditioning[r.user_id] for r in records]
    model = run.reward_model().eval()
    model.use_guidance(1.0, [])  # score unguided: accuracy_by_weight applies each w itself
    accuracy = accuracy_by_weight(model, conditionings, [r.prompt for r in records], [r.chosen for r in records],
                                  [r.rejected for r in records], guidance["population"], WEIGHTS)
    print(f"{args.dataset}, chosen w = {guidance['weight']}:",
          ", ".join(f"w={w}: {100 * a:.1f}" for w, a in accuracy.items()))


if __name__ == "__main__":
    main()
