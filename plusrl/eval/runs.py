"""Evaluate trained runs on held-out splits and gather their results into one table."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from plusrl.config import load_config
from plusrl.data.registry import load_split
from plusrl.eval.accuracy import evaluate
from plusrl.models.conditioning import build_conditionings
from plusrl.training.reward import RewardTrainConfig, load_trained_reward_model


def evaluate_run(run_dir: Path, datasets: list[str] | None = None, max_records: int = 0) -> list[dict]:
    """Accuracy of the run's latest reward model on the `test` split of each dataset."""
    cfg = load_config(RewardTrainConfig, run_dir / "config.yaml")
    model = load_trained_reward_model(run_dir)
    results = []
    for dataset in datasets or cfg.data.eval_datasets:
        records = load_split(dataset, "test")
        if max_records:
            records = records[:max_records]
        conditionings = build_conditionings(cfg.method, records, dataset)
        metrics = evaluate(model, records, conditionings, run_dir / "eval", dataset)
        metrics["method"] = cfg.method
        results.append(metrics)
    return results


def collect_results(run_dirs: list[Path]) -> list[dict]:
    rows = []
    for run_dir in run_dirs:
        method = load_config(RewardTrainConfig, run_dir / "config.yaml").method
        for path in sorted((run_dir / "eval").glob("*.json")):
            rows.append({"method": method, "run": str(run_dir), **json.loads(path.read_text())})
    return rows


def print_table(rows: list[dict], console: Console | None = None) -> None:
    datasets = sorted({r["dataset"] for r in rows})
    table = Table(title="Held-out reward-model accuracy (%)")
    table.add_column("method")
    for d in datasets:
        table.add_column(d, justify="right")
    for method in dict.fromkeys(r["method"] for r in rows):
        cells = {r["dataset"]: f"{100 * r['accuracy']:.1f}  (n={r['n_pairs']})" for r in rows if r["method"] == method}
        table.add_row(method, *(cells.get(d, "—") for d in datasets))
    (console or Console()).print(table)
