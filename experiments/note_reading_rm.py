"""Does a reward model taught on people's notes read their words as written?

    python experiments/note_reading_rm.py RUN --steps 0      # the run's reward model as it is
    python experiments/note_reading_rm.py RUN --steps 0 --guidance-weight 1   # scored without guidance
    python experiments/note_reading_rm.py RUN --steps 0 --neutral-baseline    # guided from "Birds and hamsters."
    python experiments/note_reading_rm.py RUN --steps 300    # + 300 Bradley-Terry steps, half on notes
    python experiments/note_reading_rm.py RUN --steps 0 --composed-only   # composed notes alone
    python experiments/note_reading_rm.py --backbone qwen2.5-coder-0.5b --steps 150 --bf16   # a fresh reward model
    python experiments/note_reading_rm.py RUN --steps 0 --bf16 --restater runs/readers/qwen1.5b   # notes restated first

Takes a trained PLUS run's reward model (with its calibrated guidance) and continues its
Bradley-Terry training on Pets' training pairs, each conditioned on the user's stated summary
("The user prefers dogs.") or, for a share of them, on a note in the training wordings
(`pets_facts/notes/train.txt`) about the user's animal and the other. Prints the edit check as
written (the statement is the conditioning text), by word order, on the validation wordings and
animals and on the test ones, and accuracy on pets-val and pets-val-agreed with stated summaries,
before and after. Nothing is written to the run.

With `--backbone` instead of a run, the reward model is a fresh one on that backbone (a decoder
gets LoRA and a last-token value head, the paper's design; scored at w = 1) and learns the same mix from
scratch: does a larger reader than the 22M cross-encoder read a person's words as written?

`--polarity-share S` words that share of the training notes by the polarity grammar
(plusrl.data.note_grammar: "never" beside the liked animal as often as beside the other);
`--extra-wordings FILE` adds training wordings; `--extra-validation FILE` scores more validation
wordings, on the validation animals and facts (repeatable). `note_wordings/` holds such a pair:
wordings whose cue words point the other way ("never", "don't" beside the liked animal: "{Y} tire
me out; {x} never have."), where a reader that takes "never X" for "not X" fails; and
`broad_validation.txt`, 32 wordings of either order as people write them, idioms, two sentences and
typos ("{Y} have never been my cup of tea. {X}, though, I adore.").

`--restater FOLDER` reads every note restated first by a saved summarizer (a run's
`checkpoints/step-*/summarizer`, or one `reading_warmup.py --save` wrote), as the service's restate does,
and the reward model reads the restatement; "restated right" is the share of restatements naming the liked
animal and not the other.

Also scored: the validation wordings about a validation animal and birds (which Pets' population
prior ranks first for every user), birds liked and birds disliked; and notes
composed from two clauses (`note_clauses/`, one about each animal, either order, joined as people
join two statements: "I avoid horses, while hamsters rock."), about the validation animals and facts.
No training wording is made this way, so it is a larger held-out set of wordings than the edit
check's eight validation ones.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import torch

from plusrl.data.note_grammar import polarity_wordings
from plusrl.data.pets import VALIDATION_USERS, load_note_wordings, load_validation_facts, note_text, stated_summary
from plusrl.data.registry import load_split
from plusrl.eval.accuracy import score_responses
from plusrl.eval.readability import VALIDATION_EDIT_PAIRS, EditCase, edit_cases, edit_following
from plusrl.eval.runs import written_scorer
from plusrl.models.reward_model import RewardModel, RewardModelConfig
from plusrl.models.summarizer import Summarizer
from plusrl.run_dir import RunDir
from plusrl.training.losses import bradley_terry_loss, guided_reward
from reading_warmup import CLAUSES, composed_wording  # this folder's script

COMPOSED_NOTES = 64
"""Composed notes per validation animal pair, each scored on four fact pairs."""
BIRDS_AND_OTHERS = VALIDATION_USERS["pets-val-ood"]
"""(liked, other) pairs of a validation animal and birds, both ways, as the pets-val-ood users."""


def stated_accuracy(model, dataset: str) -> float:
    records = load_split(dataset, "validation", "pairs")
    conditionings = [model.as_conditioning(stated_summary(r.meta["user_type"])) for r in records]
    chosen = score_responses(model, conditionings, [r.prompt for r in records], [r.chosen for r in records])
    rejected = score_responses(model, conditionings, [r.prompt for r in records], [r.rejected for r in records])
    return 100 * (chosen > rejected).float().mean().item()


def composed_cases() -> list[EditCase]:
    """Notes composed from a clause about each animal, on the validation animal pairs and facts."""
    rng, facts = random.Random("note-reading-rm/composed"), load_validation_facts()
    liked_clauses, disliked_clauses = ((CLAUSES / f"{kind}.txt").read_text(encoding="utf-8").splitlines()
                                       for kind in ("liked", "disliked"))
    cases = []
    for x, y in VALIDATION_EDIT_PAIRS:
        for _ in range(COMPOSED_NOTES):
            template = composed_wording(rng, liked_clauses, disliked_clauses)
            statement = note_text(template, x, y)
            cases += [EditCase("composed", template, statement, x, y, facts[x][k], facts[y][k]) for k in range(4)]
    return cases


def rates(edits: dict) -> str:
    """"89.6 {'liked first': 95.3, 'liked second': 78.1}": an edit check's rate, overall and by word order
    (and the share restated right, when the notes were restated)."""
    restated = f", restated right {100 * edits['restated_right']:.1f}" if "restated_right" in edits else ""
    return (f"{100 * edits['edit_following']:.1f} " + str({k: round(100 * v, 1) for k, v in edits["by_order"].items()})
            + restated)


def saved_restater(folder: Path, bf16: bool):
    """`restate(statements)` → texts by the summarizer saved in `folder`, as the service's restate."""
    summarizer = Summarizer.load(folder).eval()
    if bf16:
        summarizer.autocast_dtype = torch.bfloat16
    return lambda statements: summarizer.restate(statements, "pets")


def neutral_note(case: EditCase) -> str:
    """A note that names the case's two animals and says nothing of either ("Birds and hamsters.")."""
    first, second = sorted((case.liked, case.other))
    return f"{first.capitalize()} and {second}."


def read_edits(model, cases: list[EditCase], neutral_baseline: bool = False, restate=None) -> dict:
    """The edit check on `cases`, each statement as written (or restated by `restate` first), under the run's
    guidance; with `neutral_baseline`, r̄ of the guidance is the reward under a note naming the same two animals
    (`neutral_note`) instead of the population's summaries, so that r − r̄ keeps what the note says of each
    animal and drops that it names them."""
    if not neutral_baseline:
        return edit_following(written_scorer(model), cases, restate=restate)
    neutral = {c.statement: neutral_note(c) for c in cases}
    as_written, as_neutral = written_scorer(model), written_scorer(model, lambda t: model.as_conditioning(neutral[t]))
    weight, population = model.guidance_weight, model.population

    def score(texts, prompts, responses):
        model.use_guidance(1.0, population)  # r and r̄ unguided, then guided here
        try:
            own, baseline = as_written(texts, prompts, responses), as_neutral(texts, prompts, responses)
        finally:
            model.use_guidance(weight, population)
        return guided_reward(own, baseline, weight)
    return edit_following(score, cases)


def read_as(restate) -> str:
    """How a report's notes were read: "as written", or "restated" by `restate` first."""
    return "as written" if restate is None else "restated"


def report_composed(model, neutral_baseline: bool = False, restate=None) -> None:
    print(f"composed notes {read_as(restate)}: {rates(read_edits(model, composed_cases(), neutral_baseline, restate))}")


def report(model, label: str, extra_validation: dict[str, list[str]], neutral_baseline: bool = False,
           restate=None) -> None:
    print(f"--- {label}" + (", guided from a neutral note about the same animals" if neutral_baseline else "")
          + (", each note restated first" if restate else ""))
    report_composed(model, neutral_baseline, restate)
    for name, wordings in extra_validation.items():
        edits = read_edits(model, edit_cases(validation=True, templates=wordings), neutral_baseline, restate)
        print(f"extra validation wordings ({name}) {read_as(restate)}: {rates(edits)}")
        print(f"  by wording: { {t: round(100 * v, 1) for t, v in edits['by_statement'].items()} }")
    # Pets' prior ranks birds first for every user, and the validation animals nowhere
    for birds, pairs in (("liked", [p for p in BIRDS_AND_OTHERS if p[0] == "birds"]),
                         ("disliked", [p for p in BIRDS_AND_OTHERS if p[1] == "birds"])):
        edits = read_edits(model, edit_cases(validation=True, pairs=pairs), neutral_baseline, restate)
        print(f"edits {read_as(restate)}, validation wordings, a validation animal and birds, birds {birds}: {rates(edits)}")
    for name, validation in (("validation", True), ("test", False)):
        edits = read_edits(model, edit_cases(validation=validation), neutral_baseline, restate)
        print(f"edits {read_as(restate)}, {name} wordings: {rates(edits)}")
        weak = {t: round(100 * v, 1) for t, v in edits["by_statement"].items() if v < 0.95}
        print(f"  below 95: {weak}")
    for dataset in ("pets-val", "pets-val-agreed"):
        print(f"{dataset}, stated summaries: {stated_accuracy(model, dataset):.1f}")


def read_wordings(path: Path | None) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()] if path else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, nargs="?", help="a trained PLUS run (or --backbone)")
    parser.add_argument("--backbone", default="", help="train a fresh reward model on this backbone instead")
    parser.add_argument("--lora-rank", type=int, default=16, help="with --backbone")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (where the CPU runs it fast)")
    parser.add_argument("--similarity-weight", type=float, default=0.0, help="with --backbone (the Pets recipe: 5)")
    parser.add_argument("--extra-wordings", type=Path, help="more training wordings, one template a line")
    parser.add_argument("--polarity-share", type=float, default=0.0,
                        help="share of training notes worded by the polarity grammar (plusrl.data.note_grammar)")
    parser.add_argument("--extra-validation", type=Path, action="append", default=[],
                        help="a file of more validation wordings, one template a line (repeatable)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--note-share", type=float, default=0.5)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--composed-only", action="store_true", help="score the composed notes alone")
    parser.add_argument("--guidance-weight", type=float, help="with a run: score at this w instead of its calibrated one")
    parser.add_argument("--neutral-baseline", action="store_true",
                        help="with a run: guide each note from a note naming the same animals (read_edits)")
    parser.add_argument("--restater", type=Path,
                        help="with a run and --steps 0: a saved summarizer restates each note first")
    args = parser.parse_args()
    if bool(args.run) == bool(args.backbone):
        parser.error("give a run or --backbone, not both")
    if args.restater and (args.backbone or args.steps or args.neutral_baseline or args.composed_only):
        parser.error("--restater reads notes with a run's reward model as it is: with a run and --steps 0 alone")
    if args.restater and not (args.restater / Summarizer.config_file).is_file():
        parser.error(f"--restater {args.restater}: no saved summarizer there (a run's checkpoints/step-*/summarizer, "
                     "or a folder reading_warmup.py --save wrote)")
    extra_validation = {path.stem: read_wordings(path) for path in args.extra_validation}
    torch.manual_seed(0)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16)
    if args.backbone:
        model = RewardModel(RewardModelConfig(backbone=args.backbone, lora_rank=args.lora_rank,
                                              similarity_weight=args.similarity_weight))
    else:
        model = RunDir(args.run).reward_model()
        if args.guidance_weight is not None:
            model.use_guidance(args.guidance_weight, model.population)
        with autocast, torch.no_grad():
            if args.composed_only:
                report_composed(model, args.neutral_baseline)
                return
            restate = saved_restater(args.restater, args.bf16) if args.restater else None
            report(model, "the run's reward model", extra_validation, args.neutral_baseline, restate)
    if not args.steps:
        return
    wordings, rng = load_note_wordings("train") + read_wordings(args.extra_wordings), random.Random(0)
    records = [r.for_reward_model() for r in load_split("pets", "train", "pairs")]
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    model.train()
    for step in range(args.steps):
        batch = rng.sample(records, args.batch_size)
        texts = []
        for r in batch:
            liked = r.meta["user_type"]
            other = "cats" if liked == "dogs" else "dogs"
            if rng.random() >= args.note_share:
                texts.append(stated_summary(liked))
                continue
            grammar = args.polarity_share and rng.random() < args.polarity_share
            texts.append(note_text(rng.choice(polarity_wordings() if grammar else wordings), liked, other))
        enc = model.encode_pairs(batch, [model.as_conditioning(t) for t in texts])
        with autocast:
            rewards = model(enc).float()
        loss = bradley_terry_loss(rewards[: len(batch)], rewards[len(batch):])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if step % 25 == 0:
            print(f"step {step}: loss {loss.item():.3f}", flush=True)
    model.eval()
    with autocast, torch.no_grad():
        report(model, f"after {args.steps} steps, note share {args.note_share}", extra_validation)


if __name__ == "__main__":
    main()
