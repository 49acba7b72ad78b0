"""Does a supervised warm-up teach the summarizer to read a person's own note?

    python experiments/reading_warmup.py --steps 0          # the instruction-tuned model as it is
    python experiments/reading_warmup.py --steps 120        # plusrl's warm-up (prefix-cached pass)
    python experiments/reading_warmup.py --steps 120 --full-sequence
    python experiments/reading_warmup.py --steps 0 summarizer.model=qwen2.5-coder-0.5b
    python experiments/reading_warmup.py --steps 120 --composed-share 0.5   # half the notes composed from clauses
    python experiments/reading_warmup.py --steps 60 --save runs/readers/qwen1.5b summarizer.model=qwen2.5-coder-1.5b

Builds the Pets PLUS recipe's summarizer, runs `reading_warmup` (train_plus's phase 0) on the
built-in restatements (notes about 58 animals in the 115 training wordings), then restates held-out
wordings about held-out animals: the edit check's validation cases (share restated right, by
word order) and pets-notes-val (share restated exactly as "The user prefers X."). Prints the
misread statements. `--full-sequence` trains with gradients through the prompt as well (a plain
causal-LM loss over prompt + summary) instead of stopping them at the cached prompt.
`--composed-share S` trains on the built-in restatements with a share S of their notes composed
instead from a clause about the liked animal and one about the other (`note_clauses/`), in either
order and joined as people join two statements, so that what each clause says, not where it
stands, decides which animal is liked. `--save DIR` keeps the warmed summarizer (LoRA and config),
for `note_reading_rm.py --restater DIR` to restate people's notes with.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path

import torch

from plusrl.config import load_config
from plusrl.data.note_grammar import sentence_start
from plusrl.data.pets import (
    READING_ANIMALS,
    READING_EXAMPLES,
    load_note_wordings,
    note_text,
    restatements,
    stated_summary,
)
from plusrl.eval.readability import edit_cases
from plusrl.training.configs import PlusConfig
from plusrl.training.plus import build, reading_warmup

CLAUSES = Path(__file__).parent / "note_clauses"
# How two clauses join into a note, and whether the second then starts a sentence.
CLAUSE_JOINS = ((". ", True), ("! ", True), ("; ", False), (", but ", False), (" and ", False), (", while ", False),
                (", whereas ", False), (" - ", False))


def composed_wording(rng: random.Random, liked_clauses: list[str], disliked_clauses: list[str]) -> str:
    """A note template from one clause about each animal, in either order:
    ("I avoid {y}", "{x} rock", ", while ") → "I avoid {y}, while {x} rock."."""
    liked, disliked = rng.choice(liked_clauses), rng.choice(disliked_clauses)
    first, second = (liked, disliked) if rng.random() < 0.5 else (disliked, liked)
    join, starts_sentence = rng.choice(CLAUSE_JOINS)
    second = sentence_start(second) if starts_sentence else second
    template = sentence_start(first) + join + second + ("." if rng.random() < 0.8 else "!")
    return template.lower() if rng.random() < 0.1 else template  # some people write all in lower case


def composed_restatements(share: float, path: Path) -> str:
    """The built-in restatements (same animals, same draws) with `share` of the notes composed from
    clauses, written as the JSONL file `reading_warmup.restatements` reads; returns its path."""
    wordings, rng = load_note_wordings("train"), random.Random("pets-notes/restatements")
    liked_clauses, disliked_clauses = ((CLAUSES / f"{kind}.txt").read_text(encoding="utf-8").splitlines()
                                       for kind in ("liked", "disliked"))
    lines = []
    for _ in range(READING_EXAMPLES):
        liked, other = rng.sample(READING_ANIMALS, 2)
        wording = (composed_wording(rng, liked_clauses, disliked_clauses) if rng.random() < share
                   else rng.choice(wordings))
        lines.append(json.dumps({"context": [{"kind": "text", "text": note_text(wording, liked, other)}],
                                 "summary": stated_summary(liked)}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def full_sequence_warmup(run, steps: int) -> None:
    """The same examples, batch size and learning rate, with the loss of a plain causal LM."""
    warm, summarizer = run.cfg.reading_warmup, run.summarizer
    optimizer = torch.optim.AdamW(summarizer.policy_parameters(), lr=warm.lr, weight_decay=0.0)
    summarizer.train()
    for _ in range(steps):
        contexts, summaries = zip(*run.restatements.sample(warm.batch_size), strict=True)  # as `build` drew them
        prompts = [summarizer.prompt_ids(c, run.prompts) for c in contexts]
        targets, target_mask = summarizer.target_ids(list(summaries))
        rows = [p + t[m.bool()].tolist() for p, t, m in zip(prompts, targets, target_mask)]
        labels = [[-100] * len(p) + t[m.bool()].tolist() for p, t, m in zip(prompts, targets, target_mask)]
        width, pad = max(map(len, rows)), summarizer.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
        label_ids = torch.tensor([[-100] * (width - len(r)) + lab for r, lab in zip(rows, labels)])
        with run.ctx.accelerator.autocast():
            loss = summarizer.lm(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(1) - 1).clamp(min=0),
                                 labels=label_ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--full-sequence", action="store_true")
    parser.add_argument("--composed-share", type=float, default=0.0,
                        help="share of the warm-up's notes composed from two clauses (0: the built-in set as it is)")
    parser.add_argument("--save", type=Path, help="save the summarizer after the warm-up to this folder")
    parser.add_argument("overrides", nargs="*", help="recipe overrides, e.g. summarizer.model=qwen2.5-coder-0.5b")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        composed = ([f"reading_warmup.restatements={composed_restatements(args.composed_share, Path(out) / 'notes.jsonl')}"]
                    if args.composed_share else [])
        cfg = load_config(PlusConfig, "recipes/pets/plus.yaml", [
            f"output_dir={out}", f"reading_warmup.steps={args.steps}", f"reading_warmup.lr={args.lr}", "report_to=none",
            *composed, *args.overrides])
        run = build(cfg)
        if args.steps and args.full_sequence:
            full_sequence_warmup(run, args.steps)
        elif args.steps:
            print(reading_warmup(run))
    summarizer = run.summarizer
    if args.save:
        summarizer.save(args.save)
    summarizer.eval()
    if run.ctx.accelerator.mixed_precision == "bf16":
        summarizer.autocast_dtype = torch.bfloat16  # as a bf16 run's evaluation does
    cases = edit_cases(validation=True)
    statements = list(dict.fromkeys(c.statement for c in cases))
    said = dict(zip(statements, summarizer.restate(statements, run.prompts), strict=True))
    by_order: dict[str, list[bool]] = {}
    for case in cases:
        by_order.setdefault(case.order, []).append(case.restated_right(said[case.statement]))
    notes = restatements("validation")
    written = summarizer.restate([context.context[0].text for context, _ in notes], run.prompts)
    exact = sum(text.strip() == target for text, (_, target) in zip(written, notes, strict=True)) / len(notes)
    print("edit check, validation wordings, restated right:",
          {order: round(100 * sum(ok) / len(ok), 1) for order, ok in by_order.items()})
    print(f"pets-notes-val restated exactly: {100 * exact:.1f} %")
    for statement, text in said.items():
        case = next(c for c in cases if c.statement == statement)
        if not case.restated_right(text):
            print(f"  misread ({case.order}): {statement!r} → {text!r}")


if __name__ == "__main__":
    main()
