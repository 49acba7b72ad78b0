"""How does a run's reward model rank held-out pairs with no guidance (w = 1, as the paper scores)?

`plusrl eval` first calibrates the guidance weight, which scores every response under the texts of
16 training users besides the user's own: cheap for a MiniLM reward model, hours on a CPU for a
decoder reading whole contexts (ICL). This scores the run's latest reward model as trained, on the
splits given, and writes the metrics and per-pair predictions under `--out`, never in the run.

    python experiments/unguided_accuracy.py runs/icl-smollm2-512 --dataset pets-val-ood@validation \
        --out report/experiments/icl-decoder-unguided
"""

from __future__ import annotations

import argparse
from pathlib import Path

from plusrl.data.registry import load_split
from plusrl.eval.accuracy import evaluate
from plusrl.eval.guidance import RunConditionings
from plusrl.run_dir import RunDir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", help="a trained run folder")
    parser.add_argument("--dataset", action="append", required=True, help="NAME[@SPLIT] (repeatable; split: test)")
    parser.add_argument("--max-records", type=int, default=0)
    parser.add_argument("--out", required=True, help="folder for the metrics and predictions")
    args = parser.parse_args()

    run = RunDir(Path(args.run))
    model = run.reward_model()
    model.use_guidance(1.0, [])
    conditionings = RunConditionings(run)
    for spec in args.dataset:
        dataset, _, split = spec.partition("@")
        records = load_split(dataset, split or "test", run.config().data.context_type)
        records = records[: args.max_records] if args.max_records else records
        metrics = evaluate(model, records, conditionings(records), Path(args.out), spec.replace("@", "-"))
        print(f"{spec}: {100 * metrics['accuracy']:.1f} % of {metrics['n_pairs']} pairs, unguided "
              f"({metrics['n_truncated_inputs']} inputs truncated)")


if __name__ == "__main__":
    main()
