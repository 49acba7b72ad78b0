"""Which leg of PLUS fails on DSP: the summaries, or the reward model that reads them?

A run's eval predictions hold, for each held-out user, the summary the summarizer wrote and whether
the run's reward model ranked the user's pair right under it. This splits that accuracy by what the
summary names (plusrl.eval.readability.named_styles): the user's own style, the style of the
rejected answer, another style, or none. A reward model that follows summaries is right more often
under one naming the user's style than under one naming the rejected style.

`--by quote` splits by where a summary's quotation comes from instead: an answer the user chose in
their context, one they rejected, a prompt, or nowhere in it (summaries that quote the context
rather than name a style; a quote from a chosen answer is written in the user's style).

`--reward-model RUN` re-scores the same pairs with another run's reward model (an Oracle run, whose
reward model learnt what each style description is worth), under each summary and under the user's
oracle text, both given as that reward model was trained: the text alone, no summary template. It
asks whether the summaries would carry the preference to a reward model that reads style words.

`--right-style` asks the converse, of the run's own reward model: what would it score if the
summarizer named the user's style for every user? Each user's pair is re-scored under a summary the
run wrote for another user of the same domain, one that names that domain's style (the next such
user, in the predictions' order); `--donor-run RUN2` takes those summaries from another run's
predictions on the same split instead, to tell a reward model's reading from a summarizer's words.
The run's own summaries are re-scored beside it, which must give back the run's accuracy.

    python experiments/dsp_summary_reading.py runs/dsp-qwen1.5b/plus-style-start-seed0 --split test \
        --reward-model runs/dsp-oracle-seed0 --out report/experiments/dsp-summary-reading.json
"""

from __future__ import annotations

import argparse
import collections
import json
import re
from pathlib import Path

from plusrl.data.registry import load_split
from plusrl.eval.accuracy import score_pairs
from plusrl.eval.readability import named_styles
from plusrl.run_dir import RunDir

KINDS = ("names the user's style", "names the rejected style", "names another style", "names no style")


def summary_kind(summary: str, meta: dict) -> str:
    """What the summary names most: the user's style, the rejected answer's style, another, or none."""
    counts = named_styles(summary)
    top = max(counts.values())
    if top == 0:
        return KINDS[3]
    leaders = [domain for domain, n in counts.items() if n == top]
    if leaders == [meta["user_type"]]:
        return KINDS[0]
    return KINDS[1] if meta["rejected_type"] in leaders else KINDS[2]


QUOTE_SOURCES = ("quotes a chosen answer", "quotes a rejected answer", "quotes a prompt", "quotes nothing of the context")


def quote_source(summary: str, record) -> str:
    """Where the summary's first quotation found in the user's context comes from (its first 25
    characters, case aside): a chosen answer, a rejected one, a prompt, or nowhere."""
    context = {QUOTE_SOURCES[0]: [p.chosen.lower() for p in record.context],
               QUOTE_SOURCES[1]: [p.rejected.lower() for p in record.context],
               QUOTE_SOURCES[2]: [p.prompt.lower() for p in record.context]}
    for quote in re.findall(r'"([^"]{8,})', summary):
        key = quote.strip().lower()[:25]
        for source, texts in context.items():
            if any(key in text for text in texts):
                return source
    return QUOTE_SOURCES[3]


def ranks_right(reward_model, texts: list[str], records: list) -> list[bool]:
    """Whether r(chosen | text) > r(rejected | text) for each record, the text given as is."""
    chosen, rejected, _ = score_pairs(reward_model, records, texts)
    return (chosen > rejected).tolist()


def right_style_conditionings(predictions: list[dict], donor_predictions: list[dict]) -> list[str]:
    """For each user, the conditioning text of the next other donor user of their domain (in order)
    whose summary names that domain's style (their own when they are the only one); ValueError when a
    domain has none. The donors are the same users as `predictions`, in the same order."""
    donors = collections.defaultdict(list)
    for i, p in enumerate(donor_predictions):
        if summary_kind(p["summary"], p["meta"]) == KINDS[0]:
            donors[p["meta"]["user_type"]].append(i)
    out = []
    for i, p in enumerate(predictions):
        domain = p["meta"]["user_type"]
        if not donors[domain]:
            raise ValueError(f"no donor summary names the {domain} style, so none can stand in")
        others = [j for j in donors[domain] if j != i] or donors[domain]
        out.append(donor_predictions[next((j for j in others if j > i), others[0])]["conditioning"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", help="a PLUS run folder whose eval/ holds DSP predictions")
    parser.add_argument("--dataset", default="data/dsp")
    parser.add_argument("--split", default="validation", choices=["validation", "test"])
    parser.add_argument("--reward-model", default="", help="another run whose reward model re-scores the pairs")
    parser.add_argument("--right-style", action="store_true",
                        help="re-score with the run's reward model under summaries that name each user's style")
    parser.add_argument("--donor-run", default="", help="with --right-style: take those summaries from this run")
    parser.add_argument("--by", default="style", choices=["style", "quote"], help="what the summary names, or what it quotes")
    parser.add_argument("--out", default="")
    args = parser.parse_args()

    name = Path(args.dataset).name + ("@validation" if args.split == "validation" else "")

    def read_predictions(run: str) -> list[dict]:
        return [json.loads(line) for line in (Path(run) / "eval" / f"{name}.predictions.jsonl").open()]

    predictions = read_predictions(args.run)
    records = {r.user_id: r for r in load_split(args.dataset, args.split)}
    ordered = [records[p["user_id"]] for p in predictions]
    if args.by == "style":
        groups, kinds = KINDS, [summary_kind(p["summary"], p["meta"]) for p in predictions]
    else:
        groups, kinds = QUOTE_SOURCES, [quote_source(p["summary"], r) for p, r in zip(predictions, ordered, strict=True)]
    columns = {"the run's reward model": [p["correct"] for p in predictions]}

    if args.reward_model:
        reward_model = RunDir(Path(args.reward_model)).reward_model()
        columns["--reward-model, under the summary"] = ranks_right(reward_model, [p["summary"] for p in predictions], ordered)
        columns["--reward-model, under the oracle text"] = ranks_right(reward_model, [r.oracle for r in ordered], ordered)

    if args.right_style:
        reward_model = RunDir(Path(args.run)).reward_model()
        donor_predictions = read_predictions(args.donor_run) if args.donor_run else predictions
        if [p["user_id"] for p in donor_predictions] != [p["user_id"] for p in predictions]:
            raise SystemExit(f"{args.donor_run}: its predictions are not of the same users in the same order")
        columns["re-scored under its summary"] = ranks_right(reward_model, [p["conditioning"] for p in predictions], ordered)
        try:
            stand_ins = right_style_conditionings(predictions, donor_predictions)
        except ValueError as error:
            raise SystemExit(f"{args.donor_run or args.run}: {error}") from None
        columns["under a summary naming the user's style"] = ranks_right(reward_model, stand_ins, ordered)

    table = collections.defaultdict(dict)
    for kind in (*groups, "all"):
        rows = [i for i, k in enumerate(kinds) if kind in ("all", k)]
        for column, right in columns.items():
            table[kind][column] = round(100 * sum(right[i] for i in rows) / len(rows), 1) if rows else None
        table[kind]["users"] = len(rows)
    print(f"{'summary':31s} {'users':>5s}  " + "  ".join(columns))
    for kind, row in table.items():
        print(f"{kind:31s} {row['users']:5d}  " + "  ".join(f"{row[c]!s:>{len(c)}s}" for c in columns))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"run": args.run, "split": args.split, "reward_model": args.reward_model,
                                              "right_style": args.right_style, "donor_run": args.donor_run,
                                              "accuracy_by_summary": table}, indent=2))


if __name__ == "__main__":
    main()
