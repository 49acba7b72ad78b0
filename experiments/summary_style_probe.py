"""How often an (untrained) summarizer's greedy summaries state the user's preference, on validation users.

It isolates the summary leg of PLUS: the Oracle reward model shows what a good description is
worth, this shows whether the summarizer writes one. On DSP the check is that the summary names
the user's domain style; on Pets-like data that it states the user's animal as preferred without
copying a context sentence (plusrl.eval.readability). Each setting (the recipe's summarizer with
another `summary_start`, named instruction or instruction in your own words) runs on the same users;
`--model` puts another LM in the recipe's place (e.g. `gemma3-270m`, a base model, which reads a plain
"User: …" / "Assistant:" transcript). `--samples K` draws K summaries per user at each `--temperature`,
as an RLOO rollout does, instead of the greedy one: whether a group holds a summary that states the
preference, and whether its summaries differ on it (RL then has something to reinforce), is printed too.
`--reading-warmup N` first runs N steps of the recipe's reading warm-up (train_plus's phase 0, its
restatements set by `reading_warmup.restatements=…`) and probes the summarizer it leaves.

    python experiments/summary_style_probe.py --dataset data/dsp --users 48 \
        --summary-start "" --summary-start "The user prefers answers that are"
    python experiments/summary_style_probe.py --dataset data/dsp --users 24 --model gemma3-270m \
        --summary-start "The user prefers answers that are"
    python experiments/summary_style_probe.py --dataset data/dsp --users 24 --model qwen2.5-coder-1.5b \
        --out report/experiments/dsp-validation-qwen1.5b.jsonl
    python experiments/summary_style_probe.py --dataset pets-val --recipe recipes/pets/plus.yaml --users 32 \
        --instruction paper --instruction stated --instruction-text "Which kind of pet …? Start your response with ##Summary"
    python experiments/summary_style_probe.py --dataset data/dsp --users 64 --model qwen2.5-coder-0.5b \
        --summary-start "The user prefers answers written in the style of" --samples 4 --temperature 0.3 --temperature 1.0 \
        summarizer.stop_at_sentence_end=true
    python experiments/summary_style_probe.py --dataset data/dsp --users 64 --model qwen2.5-coder-0.5b \
        --reading-warmup 60 --samples 4 --temperature 0.3 --temperature 1.0 reading_warmup.restatements=dsp-notes \
        "summarizer.summary_start=The user prefers answers written in the style of" summarizer.stop_at_sentence_end=true
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time

import torch

from plusrl.data.registry import load_split
from plusrl.eval.readability import readability_rate
from plusrl.methods import method_config
from plusrl.models.summarizer import Summarizer
from plusrl.training.plus import build, reading_warmup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="data/dsp")
    parser.add_argument("--recipe", default="plusrl/recipes/dsp/plus.yaml", help="whose summarizer settings to use")
    parser.add_argument("--users", type=int, default=48)
    parser.add_argument("--model", default="", help="another summarizer LM (embedded name, folder or hub id)")
    parser.add_argument("--summary-start", action="append", default=[], help="repeatable; '' for none")
    parser.add_argument("--instruction", action="append", default=[], help="repeatable: paper | stated | contrast")
    parser.add_argument("--instruction-text", action="append", default=[], help="repeatable: your own instruction")
    parser.add_argument("--samples", type=int, default=0, help="summaries drawn per user (0: the greedy one)")
    parser.add_argument("--temperature", type=float, action="append", default=[], help="repeatable, with --samples")
    parser.add_argument("--seed", type=int, default=0, help="of the sampling, the same for every setting")
    parser.add_argument("--reading-warmup", type=int, default=0, help="steps of the recipe's reading warm-up first")
    parser.add_argument("overrides", nargs="*", help="recipe overrides, e.g. summarizer.stop_at_sentence_end=true")
    parser.add_argument("--out", default="", help="also write every user's type and summary to this JSONL file")
    args = parser.parse_args()
    cfg = method_config(args.recipe, ([f"summarizer.model={args.model}"] if args.model else []) + args.overrides)
    records = load_split(args.dataset, "validation")[: args.users]
    settings = ([{"summary_start": s} for s in args.summary_start] + [{"instruction": i} for i in args.instruction]
                + [{"instruction_text": t} for t in args.instruction_text]) or [{}]
    if args.samples:
        settings = [{**setting, "temperature": t} for setting in settings for t in args.temperature or [cfg.summarizer.temperature]]
    group = max(args.samples, 1)
    if args.reading_warmup and any(set(setting) - {"temperature"} for setting in settings):
        parser.error("--reading-warmup probes the summarizer it trains: vary --temperature only")
    warmed = warmed_summarizer(cfg, args.reading_warmup) if args.reading_warmup else None
    for setting in settings:
        clock = time.perf_counter()
        torch.manual_seed(args.seed)
        if warmed:
            summarizer = warmed
            summarizer.config = dataclasses.replace(cfg.summarizer, **setting)
        else:
            summarizer = Summarizer(dataclasses.replace(cfg.summarizer, **setting))
        summaries = summarizer.summarize(records, cfg.data.prompts, batch_size=8, sample=args.samples > 0, group=group)
        users = [record for record in records for _ in range(group)]  # each summary's user, in the same order
        readable = [readability_rate([summary], [user]) == 1.0 for summary, user in zip(summaries, users, strict=True)]
        groups = [readable[i : i + group] for i in range(0, len(readable), group)]
        print(json.dumps({"model": summarizer.config.model, **setting, "users": len(records), "summaries_per_user": group,
                          "states_the_users_preference": readability_rate(summaries, users),
                          "users_with_one_that_does": sum(map(any, groups)) / len(groups),
                          "users_whose_summaries_differ_on_it": sum(any(g) and not all(g) for g in groups) / len(groups),
                          "seconds": round(time.perf_counter() - clock, 1),
                          "examples": [f"{u.meta['user_type']}: {s}" for u, s in list(zip(users, summaries))[:4]]},
                         indent=1))
        if args.out:  # every summary, to read beside the check's verdict
            with open(args.out, "a", encoding="utf-8") as out:
                out.writelines(json.dumps({"setting": setting, "user_type": user.meta["user_type"], "summary": summary,
                                           "readable": verdict}) + "\n"
                               for user, summary, verdict in zip(users, summaries, readable, strict=True))


def warmed_summarizer(cfg, steps: int) -> Summarizer:
    """The recipe's summarizer after `steps` of its reading warm-up, as train_plus leaves it before iteration 0."""
    with tempfile.TemporaryDirectory() as folder:
        warm = dataclasses.replace(cfg.reading_warmup, steps=steps)
        run = build(dataclasses.replace(cfg, reading_warmup=warm, output_dir=folder))
        print(json.dumps({"reading_warmup": steps, "restatements": warm.restatements, **reading_warmup(run)}))
    run.summarizer.eval()
    return run.summarizer


if __name__ == "__main__":
    main()
