"""`plusrl reproduce TABLE`: train and evaluate the methods × datasets of a paper table over
seeds, then write report/<table>.md and .html with the paper's numbers beside ours, learning
curves (PNG) and example summaries.

Datasets that need the user's own download (UltraFeedback, PRISM) are run when `--data`
names their built folders, and are otherwise listed as missing with the command that builds them.
"""

from __future__ import annotations

import html
import json
import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path

from plusrl.config import ConfigError
from plusrl.io import atomic_write_text

PAPER_METHODS = ("btl", "dpl", "vpl", "icl", "plus-untrained", "plus", "oracle")
"""The rows of the paper's Tables 1 and 2, in its order (each a method of plusrl.methods)."""
LOCAL_DATA = {
    "ultrafeedback-p2": "plusrl data build-ultrafeedback --source <UltraFeedback files> --variant p2 --out data/uf-p2",
    "ultrafeedback-p4": "plusrl data build-ultrafeedback --source <UltraFeedback files> --variant p4 --out data/uf-p4",
    "prism": "plusrl data build-prism --source <prism-alignment folder> --out data/prism",
    "dsp": "plusrl data build-dsp --source <domain_specific_preference.test.json> --out data/dsp",
}


@dataclass
class TableSpec:
    title: str
    train_dataset: str
    eval_datasets: list[str]
    methods: tuple[str, ...] = PAPER_METHODS
    paper: dict[str, dict[str, str]] = field(default_factory=dict)
    """method → eval dataset → the paper's figure (Qwen2.5-0.5B reward model)."""
    context_types: tuple[str, ...] = ("pairs",)
    recipes: str = "pets"
    """Folder of plusrl/recipes/ whose CPU recipes the runs start from."""
    variant: str = ""
    """Start from the recipes `{method}-{variant}.yaml` instead of `{method}.yaml` (e.g. plus-notes)."""


TABLE1_PAPER = {
    "btl": {"pets": "44.1 ± 2.8"}, "dpl": {"pets": "46.2 ± 4.4"}, "vpl": {"pets": "100 ± 0"}, "icl": {"pets": "100 ± 0"},
    "plus-untrained": {"pets": "96.2 ± 1.6"}, "plus": {"pets": "99.8 ± 0.2"}, "oracle": {"pets": "100 ± 0"}}
TABLE2_PAPER = {
    "btl": {"pets-ood": "49.5 ± 2.6"}, "dpl": {"pets-ood": "49.0 ± 0.5"}, "vpl": {"pets-ood": "44.8 ± 4.0"},
    "icl": {"pets-ood": "72.5 ± 3.1"}, "plus-untrained": {"pets-ood": "85.8 ± 4.0"}, "plus": {"pets-ood": "93.7 ± 4.0"},
    "oracle": {"pets-ood": "100 ± 0"}}

TABLES = {
    "table1": TableSpec("Table 1: held-out reward-model accuracy (Pets column)", "pets", ["pets"], paper=TABLE1_PAPER),
    "table2": TableSpec("Table 2: accuracy under user shift (trained on Pets, tested on Pets-OOD)", "pets",
                        ["pets-ood"], paper=TABLE2_PAPER),
    "pets": TableSpec("Tables 1–2: Pets and Pets-OOD (trained on Pets; Pets-OOD users are unseen)", "pets",
                      ["pets", "pets-ood"], paper={
        method: TABLE1_PAPER[method] | TABLE2_PAPER[method] for method in PAPER_METHODS}),
    "table3": TableSpec("Table 3: static reward model or summarizer (UltraFeedback-P2)", "ultrafeedback-p2",
                        ["ultrafeedback-p2"], methods=("plus-static-rm", "plus-untrained", "plus"), paper={
        # rows with a 0.5B reward model and a 3B summarizer; "static" is the frozen one
        "plus-static-rm": {"ultrafeedback-p2": "53.45"}, "plus-untrained": {"ultrafeedback-p2": "59.90"},
        "plus": {"ultrafeedback-p2": "69.40"}}),
    "table4": TableSpec("Table 4: context types (preference pairs, guideline + pairs, conversations)", "pets",
                        ["pets"], methods=("icl", "plus"), context_types=("pairs", "guideline", "conversation")),
    "dsp": TableSpec("DSP (real text, four domain user types): accuracy on controversial held-out pairs", "dsp",
                     ["dsp", "dsp@validation"], recipes="dsp"),
    "dsp-contexts": TableSpec("Table 4 layout on DSP: context types (preference pairs, guideline + pairs, conversations)",
                              "dsp", ["dsp"], methods=("icl", "plus"),
                              context_types=("pairs", "guideline", "conversation"), recipes="dsp"),
    "pets-notes": TableSpec("People's own notes: PLUS trained on users who also wrote a note about themselves "
                            "(pets-notes, with the reading warm-up); held-out notes in new wordings about new animals",
                            "pets-notes", ["pets", "pets-ood", "pets-notes-val@validation"], methods=("plus",),
                            variant="notes"),
    "table6": TableSpec("Table 6: PRISM held-out conversations", "prism", ["prism"]),
    "table9": TableSpec("Table 9: PRISM held-out users", "prism", ["prism@test_users"]),
}

QUICK = {  # fits a 2-core CPU in minutes: small subsets, short summaries, few iterations
    "reward": ["data.max_train_records=128", "data.max_eval_records=48", "rm_optim.batch_size=16"],
    "plus": ["data.max_eval_records=48", "iterations=3", "rollout_batch_size=8", "rm_optim.batch_size=16",
             "ppo.minibatch_size=16", "summarizer.max_summary_tokens=16", "save_every=100"],
}


def _recipe(method: str, family: str = "pets", variant: str = "") -> Path:
    """The CPU recipe of a method, shipped inside the package (also reachable as recipes/ in a checkout)."""
    path = Path(__file__).resolve().parents[1] / "recipes" / family / f"{method}{'-' + variant if variant else ''}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: recipe missing (the reproduction runner reads plusrl/recipes/{family}/*.yaml)")
    return path


def run_one(method: str, train_dataset: str, eval_datasets: list[str], context_type: str, seed: int, out: Path,
            quick: bool, extra: list[str], recipes: str = "pets", variant: str = "") -> dict[str, float]:
    """Train one (method, dataset, context, seed) run unless it is finished, evaluate it on whichever
    datasets it lacks, return accuracies. Tables share runs (Table 1 and 2 read the same Pets runs);
    runs are keyed by those four, so give another `out` for other overrides."""
    from plusrl.eval.runs import evaluate_run
    from plusrl.methods import method_config, method_spec, train
    from plusrl.progress import announce

    run_dir = _run_dir(out, method, train_dataset, context_type, seed)
    done = {d: run_dir / "eval" / f"{_eval_name(d)}.json" for d in eval_datasets}
    if missing := [d for d, p in done.items() if not p.is_file()]:
        overrides = [f"method={method}", f"seed={seed}", f"output_dir={run_dir}", f"data.dataset={train_dataset}",
                     f"data.eval_datasets=[{','.join(eval_datasets)}]", f"data.context_type={context_type}", *extra]
        if method == "plus-static-rm":  # the frozen reward model is the one PLUS-untrained trained, same seed
            run_one("plus-untrained", train_dataset, eval_datasets, context_type, seed, out, quick, extra, recipes)
            overrides.append(f"reward_model_init={_run_dir(out, 'plus-untrained', train_dataset, context_type, seed)}")
        quick_overrides = QUICK[method_spec(method).trainer] if quick else []
        announce(f"{run_dir}: training {method} on {train_dataset} (seed {seed}), then evaluating on {', '.join(missing)}")
        train(method_config(_recipe(method, recipes, variant), quick_overrides + overrides), resume=True)
        evaluate_run(run_dir, missing)
    return {d: json.loads(p.read_text())["accuracy"] for d, p in done.items()}


def _run_dir(out: Path, method: str, train_dataset: str, context_type: str, seed: int) -> Path:
    return out / f"{train_dataset.replace('/', '_')}-{context_type}-{method}-seed{seed}"


def _eval_name(spec: str) -> str:
    """The name `evaluate_run` gives a dataset's results (a folder's name, plus any "@split")."""
    dataset, at, split = spec.partition("@")
    return (Path(dataset).name if Path(dataset).exists() else dataset) + at + split


def reproduce(table: str, seeds: list[int], out_dir: Path, report_dir: Path, quick: bool,
              data: dict[str, str] | None = None, methods: list[str] | None = None, extra: list[str] | None = None,
              dataset: str | None = None, command: str = "") -> Path:
    """`dataset` runs the table's layout (methods × context types) on another dataset, trained and
    tested on it, with no paper figures beside it: e.g. the Table 3 ablation on Pets. `command`, the
    command line that made the report, is written at its top so that a reader can run it again."""
    if table not in TABLES:
        raise ConfigError(f"unknown table {table!r}; choose from {', '.join(TABLES)}")
    spec, data = TABLES[table], data or {}
    if dataset:
        spec = replace(spec, title=f"{spec.title}, layout run on {dataset}", train_dataset=dataset,
                       eval_datasets=[dataset], paper={})
    names = {d.partition("@")[0] for d in (spec.train_dataset, *spec.eval_datasets)}
    missing = sorted(d for d in names if d in LOCAL_DATA and d not in data)
    rows, runs = [], {}
    runs_dir = out_dir / ("quick" if quick else "full")
    if not missing:
        def resolve(spec_name: str) -> str:  # dataset name → built folder, keeping any "@split"
            name, at, split = spec_name.partition("@")
            return data.get(name, name) + at + split

        for context_type in spec.context_types:
            for method in methods or spec.methods:
                scores = [run_one(method, resolve(spec.train_dataset), [resolve(d) for d in spec.eval_datasets],
                                  context_type, seed, runs_dir, quick, extra or [], spec.recipes, spec.variant)
                          for seed in seeds]
                rows.append({"method": method, "context_type": context_type, "scores": scores})
                runs[(method, context_type)] = [_run_dir(runs_dir, method, resolve(spec.train_dataset),
                                                         context_type, s) for s in seeds]
    return write_report(table, spec, rows, runs, missing, report_dir, quick, seeds, command)


def mean_std(values: list[float], each: bool = False) -> str:
    """Fractions as "mean ± std" in % (sample std over runs), one value as itself, none as "—";
    `each` adds every run's value: "98.0 ± 3.5 (100.0, 100.0, 94.0)"."""
    if not values:
        return "—"
    mean = 100 * statistics.mean(values)
    if len(values) == 1:
        return f"{mean:.1f}"
    runs = f" ({', '.join(f'{100 * v:.1f}' for v in values)})" if each else ""
    return f"{mean:.1f} ± {100 * statistics.stdev(values):.1f}{runs}"


RESULT_FILES = ("guidance.json", "eval/*.json", "eval/checks/edit_following.json")
"""What a report keeps of each run (small files; the run folders themselves stay under --out)."""


def edit_rates(edits: dict) -> dict:
    """The edit-following rates a table shows: overall and by word order, as written and restated."""
    restated = edits.get("restated", {})
    rates = {"edit_following": edits.get("edit_following"), "edit_following_restated": restated.get("edit_following")}
    for order in ("liked first", "liked second"):
        key = order.replace(" ", "_")
        rates[f"edit_following_{key}"] = _by_order(edits).get(order)
        rates[f"edit_following_restated_{key}"] = _by_order(restated).get(order)
    return rates


def _by_order(checked: dict) -> dict[str, float]:
    """An edit check's rates by word order (derived from its per-wording rates in files written before
    the check split them)."""
    from plusrl.eval.readability import share_by_order

    return checked.get("by_order") or share_by_order(checked.get("by_statement", {}))


def run_facts(run_dir: Path) -> dict:
    """One run's figures as a report shows them: the guidance weight, accuracy and readable
    summaries per evaluated dataset, edit-following as written and restated."""
    facts: dict = {"run": run_dir.name, "accuracy": {}, "readable": {}}
    if (guidance := run_dir / "guidance.json").is_file():
        facts["guidance_weight"] = json.loads(guidance.read_text())["weight"]
    for path in sorted(run_dir.glob("eval/*.json")):
        result = json.loads(path.read_text())
        facts["accuracy"][result["dataset"]] = result["accuracy"]
        if result.get("readable_summaries") is not None:
            facts["readable"][result["dataset"]] = result["readable_summaries"]
    if (edits := run_dir / "eval" / "checks" / "edit_following.json").is_file():
        checked = json.loads(edits.read_text())
        facts |= edit_rates(checked) | {"validation": edit_rates(checked.get("validation", {}))}
    return facts


def _keep_results(run_dir: Path, report_dir: Path) -> None:
    """Copy a run's result files into report_dir/runs/<run>/, so the report holds its evidence."""
    for pattern in RESULT_FILES:
        for path in run_dir.glob(pattern):
            atomic_write_text(report_dir / "runs" / run_dir.name / path.relative_to(run_dir), path.read_text())


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}"


def _per_run_lines(facts_by_run: list[dict], eval_names: list[str]) -> list[str]:
    """A Markdown table with one row per run: seed by seed, what the mean ± std above hides."""
    header = ["run", "w", *eval_names, *(f"readable, {d}" for d in eval_names), "edits as written (liked first / second)",
              "edits restated (liked first / second)", "validation wordings: edits as written (liked first / second)",
              "validation wordings: edits restated (liked first / second)"]
    lines = ["## Every run", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for facts in facts_by_run:
        def edits(key, rates=facts):  # all wordings (liked animal named first / second)
            split = [rates.get(f"{key}_liked_{order}") for order in ("first", "second")]
            return _pct(rates.get(key)) + (f" ({_pct(split[0])} / {_pct(split[1])})" if None not in split else "")

        lines.append("| " + " | ".join([
            facts["run"], str(facts.get("guidance_weight", "—")),
            *(_pct(facts["accuracy"].get(d)) for d in eval_names),
            *(_pct(facts["readable"].get(d)) for d in eval_names),
            edits("edit_following"), edits("edit_following_restated"),
            edits("edit_following", facts.get("validation", {})),
            edits("edit_following_restated", facts.get("validation", {}))]) + " |")
    return lines + [""]


def _curves(table: str, runs: dict, report_dir: Path) -> str | None:
    """One PNG: the training loss of every run over its steps (RM) or iterations (PLUS)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    plotted = False
    for (method, context_type), dirs in runs.items():
        for i, run_dir in enumerate(dirs):
            path = run_dir / "metrics.jsonl"
            if not path.is_file():
                continue
            rows = [json.loads(line) for line in path.read_text().splitlines()]
            xs = [r.get("step", r.get("iteration")) for r in rows if "rm/loss" in r]
            ys = [r["rm/loss"] for r in rows if "rm/loss" in r]
            label = f"{method} ({context_type})" if i == 0 else None
            ax.plot(xs, ys, label=label, color=f"C{list(runs).index((method, context_type)) % 10}", alpha=0.8)
            plotted = True
    if not plotted:
        plt.close(fig)
        return None
    ax.set_xlabel("optimizer step (RM) / co-training iteration (PLUS)")
    ax.set_ylabel("reward-model training loss")
    ax.set_title(table)
    ax.legend(fontsize=8)
    name = f"{table}_curves.png"
    fig.tight_layout()
    fig.savefig(report_dir / name, dpi=110)
    plt.close(fig)
    return name


def _example_summaries(runs: dict, k: int = 3) -> list[tuple[str, str, str]]:
    examples = []
    for (method, _), dirs in runs.items():
        for path in sorted(dirs[0].glob("eval/*.predictions.jsonl")) if dirs else []:
            for line in path.read_text().splitlines()[:k]:
                row = json.loads(line)
                if row.get("summary") is not None:
                    examples.append((method, str(row["meta"].get("user_type", "")), row["summary"]))
    return examples


def write_report(table, spec: TableSpec, rows, runs, missing, report_dir: Path, quick, seeds,
                 command: str) -> Path:
    report_dir.mkdir(parents=True, exist_ok=True)
    names = [_eval_name(d) for d in spec.eval_datasets]
    header = ["method", "context", *(f"{d} (ours)" for d in spec.eval_datasets),
              *(f"{d} (paper)" for d in spec.eval_datasets), *(f"readable, {d}" for d in names),
              "edits as written", "edits restated"]
    facts_by_key = {key: [run_facts(run_dir) for run_dir in dirs] for key, dirs in runs.items()}  # read once
    body = []
    for row in rows:
        ours = [mean_std([s[d_path] for s in row["scores"]], each=True)
                for d_path in (row["scores"][0] if row["scores"] else {})]
        paper = [spec.paper.get(row["method"], {}).get(d, "—") for d in spec.eval_datasets]
        facts = facts_by_key.get((row["method"], row["context_type"]), [])
        readable = [mean_std([f["readable"][d] for f in facts if d in f["readable"]]) for d in names]
        edits = [mean_std([f[key] for f in facts if f.get(key) is not None])
                 for key in ("edit_following", "edit_following_restated")]
        body.append([row["method"], row["context_type"], *ours, *paper, *readable, *edits])
    curves = _curves(table, runs, report_dir) if runs else None
    examples = _example_summaries(runs)
    mode = "quick (small subsets, embedded models, 2-core CPU)" if quick else "full recipes"
    made_by = [f"Made by `{command}` (finished runs are read, not trained again).", ""] if command else []
    lines = [f"# {spec.title}", "", *made_by,
             f"Mode: {mode}; seeds {seeds}; accuracy in %, mean ± std over seeds, then each seed's. Readable "
             "summaries and edit-following (as written, and restated by the run's summarizer) where measured. "
             "Paper figures use Qwen2.5 models (reward model 0.5B, summarizer 3B); ours use the embedded "
             "all-MiniLM-L6-v2 reward model and SmolLM2-135M summarizer unless the recipes were overridden.", ""]
    if missing:
        lines += ["**Not run — data missing.** These datasets need your own download:", ""]
        lines += [f"- `{d}`: build it with `{LOCAL_DATA[d]}`, then pass `--data {d}=<folder>`" for d in missing]
        lines.append("")
    if body:
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        lines.append("")
    if runs:
        lines += _per_run_lines([f for key in runs for f in facts_by_key[key]], names)
        for dirs in runs.values():
            for run_dir in dirs:
                _keep_results(run_dir, report_dir)
    if curves:
        lines += [f"![learning curves]({curves})", ""]
    if examples:
        lines += ["## Example summaries (held-out users)", ""]
        lines += [f"- **{m}**, user type *{t}*: {s}" for m, t, s in examples]
    md = "\n".join(lines) + "\n"
    atomic_write_text(report_dir / f"{table}.md", md)
    atomic_write_text(report_dir / f"{table}.html", _html(spec.title, header, body, curves, examples, missing, mode))
    return report_dir / f"{table}.md"


def _html(title, header, body, curves, examples, missing, mode) -> str:
    e = html.escape
    parts = [f"<!doctype html><html lang='en'><meta charset='utf-8'><title>{e(title)}</title>",
             ("<style>body{font:15px system-ui;max-width:60rem;margin:auto;padding:1rem}"
              "td,th{padding:.2rem .6rem;border-bottom:1px solid #ddd;text-align:left}</style>"),
             f"<h1>{e(title)}</h1><p>Mode: {e(mode)}</p>"]
    if missing:
        parts.append("<p><strong>Not run — data missing:</strong> " + ", ".join(e(m) for m in missing) + "</p>")
    if body:
        parts.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in body]
        parts.append("</table>")
    if curves:
        parts.append(f"<img src='{e(curves)}' alt='training loss of each method over training'>")
    if examples:
        parts.append("<h2>Example summaries</h2><ul>" + "".join(
            f"<li><b>{e(m)}</b>, user type <i>{e(t)}</i>: {e(s)}</li>" for m, t, s in examples) + "</ul>")
    return "\n".join(parts) + "\n</html>\n"
