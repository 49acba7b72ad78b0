"""Evaluate trained runs on held-out splits and gather their results into one table."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from plusrl.data.registry import load_split
from plusrl.eval.accuracy import evaluate, score_responses
from plusrl.eval.guidance import calibrate_run, is_calibrated
from plusrl.eval.readability import edit_cases, edit_following
from plusrl.eval.report import edit_rates, mean_std
from plusrl.io import atomic_write_text
from plusrl.methods import method_spec
from plusrl.models.conditioning import build_conditionings
from plusrl.progress import announce
from plusrl.run_dir import RunDir


def evaluate_run(run_dir: Path, datasets: list[str] | None = None, max_records: int = 0) -> list[dict]:
    """Accuracy of the run's latest reward model on the `test` split of each dataset (all the
    config names when `datasets` is None; none when it is empty: the edit check alone).

    Summary methods first summarize each test user's context with the run's summarizer
    (greedy), and the summaries are saved beside the predictions.
    """
    run = RunDir(run_dir)
    cfg = run.config()
    if cfg.data.calibration_datasets and not is_calibrated(run):
        calibrate_run(run_dir)
    model = run.reward_model()
    method = method_spec(cfg.method)
    summarizer = run.summarizer() if method.has_summarizer else None
    max_records = max_records or cfg.data.max_eval_records
    prompts = cfg.data.prompts
    results = []
    for spec in cfg.data.evaluated if datasets is None else datasets:
        dataset, _, split = spec.partition("@")  # "prism@test_users": another split than `test`
        records = load_split(dataset, split or "test", cfg.data.context_type)
        if max_records:
            records = records[:max_records]
        announce(f"evaluating {run.path.name} on {spec}: {len(records)} pairs")
        summaries = summarizer.summarize(records, prompts, desc=f"summarizing {spec}") if summarizer is not None else None
        conditionings = build_conditionings(cfg.method, records, prompts, summaries, model.config.summary_template)
        name = Path(dataset).name + (f"@{split}" if split else "") if Path(dataset).exists() else spec
        metrics = evaluate(model, records, conditionings, run.eval_dir, name, summaries)
        metrics |= {"method": cfg.method}
        results.append(metrics)
    if method.conditioning in ("oracle", "summary") and prompts == "pets":  # statements about animals
        score = written_scorer(model, model.as_conditioning if method.conditioning == "summary" else str)
        _check_edits(run, score, summarizer, prompts, model.guidance_weight)
    return results


def written_scorer(model, conditioning=None):
    """`score(statements, prompts, responses)` for `edit_following`: the rewards with each statement
    given to the reward model as written, in the conditioning its method reads (a summary's, the
    default, or as is: `str`)."""
    conditioning = conditioning or model.as_conditioning

    def score(texts, prompts, responses):
        return score_responses(model, [conditioning(t) for t in texts], prompts, responses)
    return score


def _check_edits(run: RunDir, score, summarizer, prompts: str, guidance_weight: float) -> None:
    """The edit-following check, written to the run's checks folder: on the test wordings, and under
    "validation" on the wordings and animals that designs are chosen on. It depends only on the
    checkpoint and the guidance weight, so a second eval of the same ones (another table) skips it."""
    edits_file = run.checks_dir / "edit_following.json"
    scored_with = {"checkpoint": run.checkpoint().name, "guidance_weight": guidance_weight}
    if edits_file.is_file() and (done := json.loads(edits_file.read_text())).get("scored_with") == scored_with \
            and "validation" in done:
        return
    announce("checking edit-following: hand-written preference statements, as written"
             + (" and restated by the summarizer" if summarizer is not None else ""))

    def check(cases):
        edits = edit_following(score, cases)
        if summarizer is not None:  # the person's words read by the summarizer first (the service's restate)
            edits["restated"] = edit_following(score, cases, restate=lambda texts: summarizer.restate(texts, prompts))
        return edits

    edits = check(edit_cases()) | {"validation": check(edit_cases(validation=True)), "scored_with": scored_with}
    run.checks_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(edits_file, json.dumps(edits, indent=2))


def collect_results(run_dirs: list[Path]) -> list[dict]:
    """One row per (run, evaluated dataset), with the run's edit-following rates when it has them
    (the statements as written, and restated by the run's summarizer)."""
    rows = []
    for run_dir in run_dirs:
        run = RunDir(run_dir)
        edits_file = run.checks_dir / "edit_following.json"
        edits = json.loads(edits_file.read_text()) if edits_file.is_file() else {}
        for path in sorted(run.eval_dir.glob("*.json")):
            rows.append({"method": run.method(), "run": str(run_dir), **edit_rates(edits), **json.loads(path.read_text())})
    return rows


EDIT_COLUMNS = {"edit_following": "edits", "edit_following_liked_first": "edits, liked first",
                "edit_following_liked_second": "edits, liked second", "edit_following_restated": "edits restated",
                "edit_following_restated_liked_first": "restated, liked first",
                "edit_following_restated_liked_second": "restated, liked second"}


def print_table(rows: list[dict], console: Console | None = None) -> None:
    """Per method, over its runs (seeds): accuracy on each dataset, the share of readable summaries
    on each dataset where the check applies, and edit-following."""
    datasets = sorted({r["dataset"] for r in rows})
    readable = [d for d in datasets if any(r.get("readable_summaries") is not None for r in rows if r["dataset"] == d)]
    table = Table(title="Held-out reward-model accuracy (%), mean ± std over runs")
    for column in ["method", "runs", *datasets, *(f"readable summaries, {d}" for d in readable), *EDIT_COLUMNS.values()]:
        table.add_column(column, justify="left" if column == "method" else "right")
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]

        def cell(dataset, key):
            return mean_std([r[key] for r in mine if r["dataset"] == dataset and r.get(key) is not None])

        def per_run(key):  # one value per run, whatever the number of datasets it was evaluated on
            return mean_std(list({r["run"]: r[key] for r in mine if r.get(key) is not None}.values()))

        table.add_row(method, str(len({r["run"] for r in mine})), *(cell(d, "accuracy") for d in datasets),
                      *(cell(d, "readable_summaries") for d in readable), *map(per_run, EDIT_COLUMNS))
    (console or Console(width=200)).print(table)
