"""How often an (untrained) summarizer's greedy summaries name the user's style, on DSP validation users.

It isolates the summary leg of PLUS on real text: the Oracle reward model shows what a good
description is worth, this shows whether the summarizer writes one. Each summarizer setting
(a recipe's summarizer, optionally with another `summary_start`) is run on the same users.

    python benchmarks/summary_style_probe.py --dataset data/dsp --users 48 \
        --summary-start "" --summary-start "The user prefers answers that are"
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

from plusrl.data.registry import load_split
from plusrl.eval.readability import readability_rate
from plusrl.methods import method_config
from plusrl.models.summarizer import Summarizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="data/dsp")
    parser.add_argument("--recipe", default="plusrl/recipes/dsp/plus.yaml", help="whose summarizer settings to use")
    parser.add_argument("--users", type=int, default=48)
    parser.add_argument("--summary-start", action="append", default=None, help="repeatable; '' for none")
    args = parser.parse_args()
    cfg = method_config(args.recipe)
    records = load_split(args.dataset, "validation")[: args.users]
    for start in args.summary_start or [cfg.summarizer.summary_start]:
        clock = time.perf_counter()
        summarizer = Summarizer(dataclasses.replace(cfg.summarizer, summary_start=start))
        summaries = summarizer.summarize(records, cfg.data.prompts)
        print(json.dumps({"summary_start": start, "users": len(records),
                          "names_the_users_style": readability_rate(summaries, records),
                          "seconds": round(time.perf_counter() - clock, 1),
                          "examples": [f"{r.meta['user_type']}: {s}" for r, s in list(zip(records, summaries))[:4]]},
                         indent=1))


if __name__ == "__main__":
    main()
