"""Does blocking copies of the context keep greedy summaries in the summarizer's own words?

For users unlike any it trained on, the Pets summarizer sometimes states the preference and then
copies a context sentence ("The user prefers Birds like swifts can stay airborne for months at a
time."), which the readability check counts as a copy. `summarizer.copy_block_tokens = n` forbids
a greedy summary to repeat n tokens in a row from its prompt. This probe re-summarizes held-out
users of trained runs with each n given (0: as trained and evaluated), at each run's calibrated
guidance weight, and reports per run: readable summaries, accuracy, and the edit-following check
restated by the summarizer (a person's note is a prompt too); the JSON keeps every summary, to read
what the block wrote instead of each copy. Validation sets and wordings, or
with `--test` the test ones instead:

    python experiments/copy_block.py --run runs/pets/full/pets-pairs-plus-seed0 [--run …] --n 0 --n 4 --n 6
    python experiments/copy_block.py --run RUN --n 6 --test     # once a setting is chosen
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from plusrl.data.registry import load_split
from plusrl.eval.accuracy import score_pairs
from plusrl.eval.readability import edit_cases, edit_following, readability_rate
from plusrl.eval.runs import written_scorer
from plusrl.models.conditioning import build_conditionings
from plusrl.run_dir import RunDir

VALIDATION_SETS = ["pets-val-ood@validation", "pets-val@validation", "pets-val-agreed@validation"]
TEST_SETS = ["pets-ood", "pets"]


def measure(run_dir: str, blocks: list[int], test: bool) -> dict:
    run = RunDir(run_dir)
    cfg = run.config()
    model = run.reward_model().eval()
    summarizer = run.summarizer()
    score = written_scorer(model)
    result = {"run": run_dir, "guidance_weight": model.guidance_weight}
    for n in blocks:
        summarizer.config.copy_block_tokens = n
        for spec in TEST_SETS if test else VALIDATION_SETS:
            dataset, _, split = spec.partition("@")
            records = load_split(dataset, split or "test", cfg.data.context_type)
            summaries = summarizer.summarize(records, cfg.data.prompts, desc=f"summarizing {spec}")
            chosen, rejected, _ = score_pairs(model, records, build_conditionings(cfg.method, records, cfg.data.prompts,
                                                                                   summaries))
            result[f"n={n}, {spec}"] = {"accuracy": (chosen > rejected).float().mean().item(),
                                        "readable": readability_rate(summaries, records), "summaries": summaries}
        for name, cases in [("test", edit_cases())] if test else [("validation", edit_cases(validation=True))]:
            edits = edit_following(score, cases, restate=lambda texts: summarizer.restate(texts, cfg.data.prompts))
            result[f"n={n}, edits restated, {name} wordings"] = {"edit_following": edits["edit_following"],
                                                                 **edits["by_order"]}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="append", required=True, help="a trained PLUS run on Pets (repeatable)")
    parser.add_argument("--n", action="append", type=int, required=True, help="copy_block_tokens to try (repeatable)")
    parser.add_argument("--test", action="store_true", help="the test sets and wordings instead (after choosing)")
    parser.add_argument("--out", default="report/experiments/copy-block", help="folder for one JSON per run")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for run in args.run:
        result = measure(run, args.n, args.test)
        brief = {key: {k: round(v, 3) for k, v in value.items() if isinstance(v, float)}
                 for key, value in result.items() if isinstance(value, dict)}
        print(json.dumps({"run": run, **brief}))
        name = Path(run).name + ("-test" if args.test else "")
        (out / f"{name}.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
