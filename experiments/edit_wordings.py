"""Does a reward model read what a person writes, or only which animal they name?

The eval's edit-following check (`plusrl.eval.readability.STATEMENTS`) is the test. This experiment
scores the *validation* wordings and animal pairs (`edit_cases(validation=True)`: "I can't stand
{y}, but I adore {x}.", "No more {y}, please. Only {x}.", …, on hamsters/horses and
goldfish/turtles), where designs may be chosen, three ways:

- as written: the run's reward model reads the person's words;
- restated (runs with a summarizer): the run's summarizer first restates the words as a summary
  (`Summarizer.restate`, what the service's POST /summary/restate does), with the instruction it
  was trained with, or `--restate-instruction` in its place;
- `--oracle-phrasing negated|mixed`: an Oracle reward model trained (Oracle recipe, `--seed`) on
  Pets whose oracle texts are rephrased with a negation ("This user likes dogs and does not like
  cats."), to see whether seeing negations in training teaches it to read others.

- `--few-shot-restater MODEL` (with `--run`): would another LM restate better than the run's
  summarizer? It restates each statement as "The user prefers X." after six worked examples on
  other animals (half name the disliked animal first), and the run's reward model reads that.
  `restated right` is the share of restatements that name the liked animal and not the other.
- `--zero-shot-restater MODEL` (with `--run`): the same with `MODEL` untrained, asked as the Pets
  summarizer is ("… which kind of pet does the user prefer? Answer in one sentence …").

Each at guidance w = 1 and at the run's calibrated w when it has one. `--test` adds the test
wordings; leave it off while choosing.

    python experiments/edit_wordings.py --run runs/pets/full/pets-pairs-plus-seed0 [--run …] [--test]
    python experiments/edit_wordings.py --oracle-phrasing mixed --seed 0 --out runs/probes/edit-wordings
    python experiments/edit_wordings.py --run RUN --few-shot-restater smollm2-135m --few-shot-restater gemma3-270m
    python experiments/edit_wordings.py --run RUN --zero-shot-restater qwen2.5-coder-1.5b
"""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

import torch

from plusrl.data.pets import shipped_path
from plusrl.data.readers import read_records
from plusrl.eval.accuracy import score_responses
from plusrl.eval.guidance import RunConditionings
from plusrl.eval.readability import edit_cases, edit_following
from plusrl.methods import method_config, train
from plusrl.models.loader import load_causal_lm, load_tokenizer
from plusrl.models.summarizer import Summarizer, SummarizerConfig
from plusrl.run_dir import RunDir

ORACLE_PHRASINGS = {  # {x} liked, {y} not; users take the phrasings in turn
    "negated": ["This user likes {x} and does not like {y}."],
    "mixed": ["This user prefers {x} over {y}.", "This user likes {x} and does not like {y}.",
              "This user does not like {y}; they like {x}.", "This user dislikes {y} and likes {x}."],
}


# Animals in no edit case; the last three examples name the disliked animal first.
FEW_SHOT_EXAMPLES = [("I adore parrots and dislike lizards.", "parrots"), ("Ferrets over snakes any day.", "ferrets"),
                     ("Give me frogs, not mice.", "frogs"), ("Lizards bore me; parrots never do.", "parrots"),
                     ("Not a snake person. Ferrets, please.", "ferrets"), ("Mice are dull. I like frogs.", "frogs")]


@functools.cache  # the same statements for every run: restate them, and load the LM, once
@torch.no_grad()
def few_shot_restate(model: str, statements: tuple[str, ...]) -> list[str]:
    """"The user prefers …" as `model` continues it, greedily, after FEW_SHOT_EXAMPLES worked out
    (plain text: a base model has no chat template, and an instruct model continues it too)."""
    tokenizer, lm = load_tokenizer(model), load_causal_lm(model).eval()
    head = "Each statement is what a user wrote about animals. Say which animal the user prefers.\n\n" + "".join(
        f"Statement: {said}\nThe user prefers {liked}.\n\n" for said, liked in FEW_SHOT_EXAMPLES)
    restated = []
    for statement in statements:
        ids = tokenizer(f"{head}Statement: {statement}\nThe user prefers", return_tensors="pt").input_ids
        out = lm.generate(ids, max_new_tokens=6, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        restated.append("The user prefers" + tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).split("\n")[0])
    return restated


@functools.cache
def zero_shot_restate(model: str, prompts: str, statements: tuple[str, ...]) -> list[str]:
    """Restatements by `model` untrained, asked as the Pets summarizer is (`instruction: stated`), greedily."""
    summarizer = Summarizer(SummarizerConfig(model=model, lora_rank=0, instruction="stated", stop_at_sentence_end=True,
                                             max_summary_tokens=24)).eval()
    return summarizer.restate(list(statements), prompts)


def rephrased_pets(phrasing: str, out: Path) -> Path:
    """Pets train/test with each oracle text rephrased (the user types are dogs and cats)."""
    out.mkdir(parents=True, exist_ok=True)
    templates = ORACLE_PHRASINGS[phrasing]
    for split in ("train", "test"):
        lines = []
        for i, record in enumerate(read_records(shipped_path("pets", split))):
            liked = record.meta["user_type"]
            text = templates[i % len(templates)].format(x=liked, y="cats" if liked == "dogs" else "dogs")
            lines.append(record.model_copy(update={"oracle": text}).model_dump_json())
        (out / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    return out


def measure(run_dir: str, test: bool, restate_instruction: str = "", few_shot_restaters: list[str] = (),
            zero_shot_restaters: list[str] = ()) -> dict:
    run = RunDir(run_dir)
    conditionings = RunConditionings(run)
    if restate_instruction and conditionings.summarizer is not None:
        conditionings.summarizer.config.instruction_text = restate_instruction
    model = run.reward_model().eval()
    as_written = model.as_conditioning if conditionings.summarizer is not None else str
    weights = sorted({1.0, model.guidance_weight})
    population = model.population or conditionings.population()

    def score(texts, prompts, responses):
        return score_responses(model, [as_written(t) for t in texts], prompts, responses)

    result = {"run": run_dir, "method": conditionings.cfg.method}
    for name, cases in [("validation", edit_cases(validation=True))] + ([("test", edit_cases())] if test else []):
        statements = tuple(dict.fromkeys(c.statement for c in cases))
        restaters = {f"restated few-shot by {lm}": functools.partial(few_shot_restate, lm) for lm in few_shot_restaters}
        restaters |= {f"restated zero-shot by {lm}": functools.partial(zero_shot_restate, lm, conditionings.cfg.data.prompts)
                      for lm in zero_shot_restaters}
        if conditionings.summarizer is not None:
            summarizer, prompts = conditionings.summarizer, conditionings.cfg.data.prompts
            restaters = {"restated": lambda texts: summarizer.restate(list(texts), prompts)} | restaters
        # once per case set: a restatement does not depend on w
        restated = {how: dict(zip(statements, restate(statements))) for how, restate in restaters.items()}
        for weight in weights:
            model.use_guidance(weight, population)
            result[f"{name}, as written, w={weight}"] = edit_following(score, cases)
            for how, texts_of in restated.items():
                result[f"{name}, {how}, w={weight}"] = edit_following(
                    score, cases, lambda texts, texts_of=texts_of: [texts_of[t] for t in texts])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="append", default=[], help="a trained run folder (repeatable)")
    parser.add_argument("--oracle-phrasing", choices=sorted(ORACLE_PHRASINGS), help="train an Oracle on rephrased texts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/probes/edit-wordings", help="where --oracle-phrasing writes data and run")
    parser.add_argument("--test", action="store_true", help="also score the test wordings (after choosing)")
    parser.add_argument("--restate-instruction", default="",
                        help="restate with these words in place of the instruction the summarizer was trained with")
    parser.add_argument("--few-shot-restater", action="append", default=[],
                        help="an LM (embedded name, folder or hub id) to restate with worked examples (repeatable)")
    parser.add_argument("--zero-shot-restater", action="append", default=[],
                        help="an LM (embedded name, folder or hub id) to restate, untrained, as the summarizer is asked")
    args = parser.parse_args()
    runs = list(args.run)
    if args.oracle_phrasing:
        out = Path(args.out)
        data = rephrased_pets(args.oracle_phrasing, out / f"pets-{args.oracle_phrasing}")
        run = out / f"oracle-{args.oracle_phrasing}-seed{args.seed}"
        if RunDir(run).latest() is None:
            train(method_config(Path(__file__).parents[1] / "recipes" / "pets" / "oracle.yaml", [
                f"seed={args.seed}", f"output_dir={run}", f"data.dataset={data}", "data.eval_datasets=[]",
                "data.calibration_datasets=[]"]))
        runs.append(str(run))
    for run in runs:
        result = measure(run, args.test, args.restate_instruction, args.few_shot_restater, args.zero_shot_restater)
        summary = {key: round(value["edit_following"], 3) for key, value in result.items() if isinstance(value, dict)}
        summary |= {f"{key}: restated right": round(value["restated_right"], 3) for key, value in result.items()
                    if isinstance(value, dict) and "restated_right" in value}
        print(json.dumps({"run": run, **summary}))
        (Path(run) / "edit_wordings.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
