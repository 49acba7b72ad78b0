"""Evaluate trained runs on held-out splits and gather their results into one table."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

from plusrl.config import load_config
from plusrl.data.registry import load_split
from plusrl.data.prompts import family, summary_conditioning
from plusrl.eval.accuracy import evaluate, score_responses
from plusrl.eval.readability import edit_following
from plusrl.io import atomic_write_text
from plusrl.models.conditioning import CONDITIONING, build_conditionings
from plusrl.models.summarizer import Summarizer
from plusrl.training.checkpoint import latest_checkpoint
from plusrl.training.plus import PlusConfig
from plusrl.training.reward import RewardTrainConfig, load_trained_reward_model

SUMMARY_METHODS = ("plus", "plus-untrained", "plus-static-rm")


def run_config(run_dir: Path) -> RewardTrainConfig | PlusConfig:
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: no config.yaml; is this a plusrl run folder?")
    method = (yaml.safe_load(path.read_text()) or {}).get("method", "btl")
    return load_config(PlusConfig if method in SUMMARY_METHODS else RewardTrainConfig, path)


def evaluate_run(run_dir: Path, datasets: list[str] | None = None, max_records: int = 0) -> list[dict]:
    """Accuracy of the run's latest reward model on the `test` split of each dataset.

    Summary methods first summarize each test user's context with the run's summarizer
    (greedy), and the summaries are saved beside the predictions.
    """
    cfg = run_config(run_dir)
    model = load_trained_reward_model(run_dir)
    summarizer = Summarizer.load(latest_checkpoint(run_dir) / "summarizer") if cfg.method in SUMMARY_METHODS else None
    max_records = max_records or cfg.data.max_eval_records
    results = []
    for spec in datasets or cfg.data.eval_datasets:
        dataset, _, split = spec.partition("@")  # "prism@test_users": another split than `test`
        records = load_split(dataset, split or "test", cfg.data.context_type)
        if max_records:
            records = records[:max_records]
        summaries = summarizer.summarize(records, dataset) if summarizer is not None else None
        conditionings = build_conditionings(cfg.method, records, dataset, summaries)
        name = Path(dataset).name + (f"@{split}" if split else "") if Path(dataset).exists() else spec
        metrics = evaluate(model, records, conditionings, run_dir / "eval", name, summaries)
        metrics["method"] = cfg.method
        results.append(metrics)
    conditioned_on = CONDITIONING[cfg.method]
    if conditioned_on in ("oracle", "summary") and family(cfg.data.dataset) == "pets":  # statements about animals
        as_written = summary_conditioning if conditioned_on == "summary" else str
        edits = edit_following(lambda c, p, r: score_responses(model, [as_written(x) for x in c], p, r))
        (run_dir / "eval" / "checks").mkdir(exist_ok=True)
        atomic_write_text(run_dir / "eval" / "checks" / "edit_following.json", json.dumps(edits, indent=2))
    return results


def collect_results(run_dirs: list[Path]) -> list[dict]:
    rows = []
    for run_dir in run_dirs:
        method = run_config(run_dir).method
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
