"""Evaluate trained runs on held-out splits and gather their results into one table."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from plusrl.data.prompts import summary_conditioning
from plusrl.data.registry import load_split
from plusrl.eval.accuracy import evaluate, score_responses
from plusrl.eval.readability import edit_following
from plusrl.io import atomic_write_text
from plusrl.methods import method_spec
from plusrl.models.conditioning import build_conditionings
from plusrl.run_dir import RunDir


def evaluate_run(run_dir: Path, datasets: list[str] | None = None, max_records: int = 0) -> list[dict]:
    """Accuracy of the run's latest reward model on the `test` split of each dataset.

    Summary methods first summarize each test user's context with the run's summarizer
    (greedy), and the summaries are saved beside the predictions.
    """
    run = RunDir(run_dir)
    cfg, model = run.config(), run.reward_model()
    method = method_spec(cfg.method)
    summarizer = run.summarizer() if method.has_summarizer else None
    max_records = max_records or cfg.data.max_eval_records
    prompts = cfg.data.prompts
    results = []
    for spec in datasets or cfg.data.evaluated:
        dataset, _, split = spec.partition("@")  # "prism@test_users": another split than `test`
        records = load_split(dataset, split or "test", cfg.data.context_type)
        if max_records:
            records = records[:max_records]
        summaries = summarizer.summarize(records, prompts) if summarizer is not None else None
        conditionings = build_conditionings(cfg.method, records, prompts, summaries)
        name = Path(dataset).name + (f"@{split}" if split else "") if Path(dataset).exists() else spec
        metrics = evaluate(model, records, conditionings, run.eval_dir, name, summaries)
        metrics["method"] = cfg.method
        results.append(metrics)
    if method.conditioning in ("oracle", "summary") and prompts == "pets":  # statements about animals
        as_written = summary_conditioning if method.conditioning == "summary" else str
        edits = edit_following(lambda c, p, r: score_responses(model, [as_written(x) for x in c], p, r))
        run.checks_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run.checks_dir / "edit_following.json", json.dumps(edits, indent=2))
    return results


def collect_results(run_dirs: list[Path]) -> list[dict]:
    rows = []
    for run_dir in run_dirs:
        method = RunDir(run_dir).method()
        for path in sorted(RunDir(run_dir).eval_dir.glob("*.json")):
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
