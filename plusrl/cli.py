"""The `plusrl` command line.

    plusrl train --method btl --dataset pets [--config RECIPE.yaml] [key.sub=value ...]
    plusrl config show plus [--config RECIPE.yaml]           (every field, its default and documentation)
    plusrl eval --run-dir runs/pets-btl [--dataset pets-ood]
    plusrl table runs/pets-btl runs/pets-oracle
    plusrl export runs/pets-plus --out exported/pets-plus       (PEFT adapter, reward model, model card)
    plusrl data validate FILE | plusrl data build-pets --out DIR
    plusrl models prepare
    plusrl summarize --context ME.json [--run-dir RUN]        (one user's summary)
    plusrl summarize --records pets --out summaries.json      (export; edit; reuse with --summaries)
    plusrl judge --records pets --run-dir RUN [--backend openai --base-url URL --model NAME]
    plusrl personalize --records pets --run-dir RUN --oracle-run ORACLE_RUN
    plusrl reproduce pets|table1|table2|table3|table4|table6|table9|dsp|dsp-contexts [--quick] [--seeds 0,1,2]
    plusrl serve --model-dir RUN [--db plusrl.db]             (the web service)
    plusrl chat-server --model smollm2-135m                   (OpenAI-compatible endpoint)
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import shlex
import sys
from pathlib import Path

from plusrl.config import ConfigError
from plusrl.data.readers import DataError
from plusrl.eval.report import TABLES
from plusrl.methods import METHODS
from plusrl.models.backends import BackendError
from plusrl.models.loader import ModelLoadError
from plusrl.run_dir import RunDir
from plusrl.serving.guard import ServiceLimits
from plusrl.serving.store import Quotas

# Errors a user can fix (a bad recipe, data file, model name or path): one line, no traceback.
# Anything else is a bug and prints its traceback.
USER_ERRORS = (ConfigError, DataError, ModelLoadError, BackendError, FileExistsError, FileNotFoundError)


def _train(args: argparse.Namespace) -> None:
    from plusrl.eval.runs import collect_results, evaluate_run, print_table
    from plusrl.methods import method_config, train

    overrides = list(args.overrides)
    if args.method:
        overrides.append(f"method={args.method}")
    if args.dataset:
        overrides.append(f"data.dataset={args.dataset}")
    if args.output_dir:
        overrides.append(f"output_dir={args.output_dir}")
    run_dir = train(method_config(args.config, overrides), resume=args.resume)
    if not args.no_eval:
        evaluate_run(run_dir)
        print_table(collect_results([run_dir]))
    print(f"run folder: {run_dir}")


def _eval(args: argparse.Namespace) -> None:
    from plusrl.eval.runs import collect_results, evaluate_run, print_table

    evaluate_run(Path(args.run_dir), args.dataset or None, args.max_records)
    print_table(collect_results([Path(args.run_dir)]))  # every dataset the run has results for


def _calibrate(args: argparse.Namespace) -> None:
    from plusrl.eval.guidance import calibrate_run

    guidance = calibrate_run(args.run_dir, args.dataset, args.tolerance)
    print(f"guidance weight w = {guidance.weight} over {len(guidance.population)} training users' texts "
          f"(validation accuracy at each w in {args.run_dir}/guidance.json); "
          f"re-run plusrl eval to score with it")


def _export(args: argparse.Namespace) -> None:
    from plusrl.export import export_run

    print(f"exported to {export_run(args.run_dir, args.out, args.summaries)}")


def _config_show(args: argparse.Namespace) -> None:
    import inspect

    from plusrl.config import describe
    from plusrl.methods import method_config, method_spec

    config = method_config(args.config, [*args.overrides, f"method={args.method}"])
    print(f"{args.method}: {method_spec(args.method).description} "
          f"({type(config).__name__}, {f'from {args.config}' if args.config else 'defaults'})")
    print(inspect.cleandoc(type(config).__doc__), "", *describe(config), sep="\n")


def _table(args: argparse.Namespace) -> None:
    from plusrl.eval.runs import collect_results, print_table

    rows = collect_results([Path(d) for d in args.run_dirs])
    if not rows:
        raise FileNotFoundError(f"no evaluation results under {', '.join(args.run_dirs)} (run plusrl eval first)")
    print_table(rows)


def _data_validate(args: argparse.Namespace) -> None:
    from plusrl.data.readers import read_records

    records = read_records(args.path, split=args.split)
    n_context = sum(len(r.context) for r in records)
    print(f"{args.path}: {len(records)} valid records, {len({r.user_id for r in records})} users, "
          f"{n_context / len(records):.1f} context items per record")


def _data_build_pets(args: argparse.Namespace) -> None:
    from plusrl.data import pets
    from plusrl.data.readers import write_records

    for dataset, split in pets.SIZES:
        path = Path(args.out) / dataset / f"{split}.jsonl"
        write_records(pets.build_split(dataset, split, seed=args.seed), path)
        print(f"wrote {path}")


def _write_splits(splits: dict, out: str) -> None:
    from plusrl.data.readers import write_records

    for split, records in splits.items():
        path = Path(out) / f"{split}.jsonl"
        write_records(records, path)
        print(f"wrote {path}: {len(records)} records, {len({r.user_id for r in records})} users")


def _data_build_ultrafeedback(args: argparse.Namespace) -> None:
    from plusrl.data import ultrafeedback

    _write_splits(ultrafeedback.build(ultrafeedback.read_rows(args.source), args.variant, seed=args.seed), args.out)
    print(f"train on it with: plusrl train --dataset {args.out} --method plus")


def _data_build_prism(args: argparse.Namespace) -> None:
    from plusrl.data import prism

    _write_splits(prism.build(args.source, seed=args.seed), args.out)
    print(f"held-out conversations: --dataset {args.out}; held-out users: data.eval_datasets=[{args.out}@test_users]")


def _data_build_dsp(args: argparse.Namespace) -> None:
    from plusrl.data import dsp

    items = dsp.read_items(args.source)
    splits = dsp.build(items, seed=args.seed, k_context=args.k_context, notes=args.notes)
    queries = {split: len({r.meta["query_index"] for r in records}) for split, records in splits.items()}
    print(f"{args.source}: {len(items)} queries split by query into " + ", ".join(f"{n} {s}" for s, n in queries.items()))
    _write_splits(splits, args.out)
    print(f"reproduce the DSP table with: plusrl reproduce dsp --data dsp={args.out} --seeds 0,1,2")


def _data_export(args: argparse.Namespace) -> None:
    import json

    from plusrl.data import plus_authors
    from plusrl.data.prompts import family
    from plusrl.data.registry import load_split
    from plusrl.io import atomic_write_text

    records = load_split(args.dataset, args.split)
    prompt_family = family(args.dataset) if args.prompt_family == "auto" else args.prompt_family
    rows = [plus_authors.from_record(r, prompt_family) for r in records]
    atomic_write_text(Path(args.out), "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    print(f"wrote {args.out}: {len(rows)} records in the PLUS authors' format (their --prompt_data json@{args.out})")


def _models_prepare(args: argparse.Namespace) -> None:
    from plusrl.models.loader import EMBEDDED, resolve

    for name in args.names or [name for name, model in EMBEDDED.items() if not model.optional]:
        print(f"{name}: {resolve(name)}")


def _summarizer(run_dir: str | None):
    """The run's trained summarizer, or the embedded default (untrained) without a run."""
    from plusrl.models.summarizer import Summarizer, SummarizerConfig

    return RunDir(run_dir).summarizer() if run_dir else Summarizer(SummarizerConfig())


def _records(args: argparse.Namespace):
    from plusrl.data.registry import load_split

    records = load_split(args.records, args.split)
    return records[: args.max_records] if args.max_records else records


def _summaries_for(args: argparse.Namespace, records) -> list[str]:
    """Summaries from an exported (possibly hand-edited) file, else written by the summarizer."""
    from plusrl.eval.zero_shot import load_summaries

    if args.summaries:
        known = load_summaries(Path(args.summaries))
        if missing := [r.user_id for r in records if r.user_id not in known]:
            raise DataError(f"{args.summaries}: no summary for {len(missing)} user(s) (first: {missing[0]})")
        return [known[r.user_id] for r in records]
    dataset = args.dataset or args.records
    return _summarizer(args.run_dir).summarize(records, dataset)


def _summarize(args: argparse.Namespace) -> None:
    from plusrl.data.readers import read_user_context
    from plusrl.eval.zero_shot import save_summaries

    if args.context:
        user = read_user_context(args.context)
        print(_summarizer(args.run_dir).summarize([user], args.dataset or "generic")[0])
        return
    if not args.records or not args.out:
        raise ConfigError("give --context FILE (one user), or --records DATASET with --out FILE (export)")
    records = _records(args)
    summaries = _summarizer(args.run_dir).summarize(records, args.dataset or args.records)
    save_summaries(Path(args.out), dict(zip((r.user_id for r in records), summaries)),
                   source=args.run_dir or "embedded default summarizer (untrained)")
    print(f"wrote {len(records)} summaries to {args.out}")


def _backend(args: argparse.Namespace):
    from plusrl.models.backends import BackendConfig, make_backend

    return make_backend(BackendConfig(kind=args.backend, model=args.model or "smollm2-135m",
                                      base_url=args.base_url or "", concurrency=args.concurrency))


def _judge(args: argparse.Namespace) -> None:
    from plusrl.eval.zero_shot import judge, judge_table

    records = _records(args)
    constrained = args.answer == "constrained" or (args.answer == "auto" and args.backend == "local")
    rows = judge(_backend(args), records, _summaries_for(args, records), seed=args.seed, constrained=constrained)
    table = judge_table(rows)
    _write_rows(Path(args.out), "judge", rows, table)
    _print_rows(f"LLM-as-judge accuracy, default → personalized (Table 7 layout; "
                f"{'constrained to Option 1/2' if constrained else 'free-text answers'})", table,
                [("type", "conversation_type", "{}"), ("n", "n", "{}"),
                 ("default", "default_accuracy", "{:.1%}"), ("personalized", "personalized_accuracy", "{:.1%}"),
                 ("unparsable", "default_unparsable", "{}"), ("unparsable (p)", "personalized_unparsable", "{}")])


def _personalize(args: argparse.Namespace) -> None:
    from plusrl.eval.zero_shot import personalize, score_with_oracle, win_table

    records = _records(args)
    rows = personalize(_backend(args), records, _summaries_for(args, records))
    rows = score_with_oracle(rows, records, RunDir(args.oracle_run).reward_model())
    table = win_table(rows)
    _write_rows(Path(args.out), "personalize", rows, table)
    _print_rows("Win rate of personalized over default responses, oracle-RM judged (Table 8 layout)", table,
                [("type", "conversation_type", "{}"), ("n", "n", "{}"), ("win rate", "win_rate", "{:.1%}"),
                 ("95% CI low", "ci_low", "{:.1%}"), ("95% CI high", "ci_high", "{:.1%}")])


def _write_rows(out: Path, name: str, rows: list[dict], table: list[dict]) -> None:
    import json

    from plusrl.io import atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / f"{name}.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    atomic_write_text(out / f"{name}.json", json.dumps(table, indent=2))


def _print_rows(title: str, table: list[dict], columns: list[tuple[str, str, str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    view = Table(title=title)
    for header, _, _ in columns:
        view.add_column(header, justify="right")
    for row in table:
        view.add_row(*(fmt.format(row[key]) for _, key, fmt in columns))
    Console().print(view)


def _add_zero_shot_args(p: argparse.ArgumentParser, needs_backend: bool) -> None:
    p.add_argument("--records", help="dataset name or records file whose users to use")
    p.add_argument("--split", default="test")
    p.add_argument("--dataset", help="prompt family when --records is a path (pets | generic)")
    p.add_argument("--max-records", type=int, default=0)
    p.add_argument("--run-dir", help="PLUS run whose summarizer writes the summaries (default: embedded, untrained)")
    p.add_argument("--summaries", help="exported summaries JSON to use instead of summarizing")
    if needs_backend:
        p.add_argument("--backend", choices=["local", "openai"], default="local")
        p.add_argument("--model", help="local: model name or path; openai: the endpoint's model name")
        p.add_argument("--base-url", help="openai: e.g. http://127.0.0.1:8000/v1 (key from $OPENAI_API_KEY)")
        p.add_argument("--concurrency", type=int, default=8)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--out", default="runs/zero-shot", help="folder for per-query rows and the table")


def _serve(args: argparse.Namespace) -> None:
    import uvicorn

    from plusrl.serving.app import Models, create_app
    from plusrl.serving.store import Store

    admin = os.environ.get("PLUSRL_ADMIN_TOKEN") or secrets.token_urlsafe(24)
    try:
        limits = ServiceLimits(max_body_bytes=args.max_body_bytes, registration=args.registration,
                               writes_per_minute=args.writes_per_minute,
                               generations_per_minute=args.generations_per_minute)
    except ValueError as error:
        raise ConfigError(f"serve: {error}") from None
    quotas = Quotas(args.max_context_items, args.max_context_bytes, args.max_summary_versions)
    app = create_app(Store(args.db, quotas), Models(args.model_dir, args.dataset), admin_token=admin, limits=limits)
    if "PLUSRL_ADMIN_TOKEN" not in os.environ:
        print(f"admin token (set PLUSRL_ADMIN_TOKEN to choose one): {admin}")
    print(f"open http://{args.host}:{args.port}/  (API schema at /openapi.json)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", limit_concurrency=limits.max_connections)


def _reproduce(args: argparse.Namespace) -> None:
    from plusrl.eval.report import reproduce

    data = dict(item.split("=", 1) for item in args.data)
    report = reproduce(args.table, [int(s) for s in args.seeds.split(",")], Path(args.out), Path(args.report_dir),
                       args.quick, data, args.methods.split(",") if args.methods else None, args.overrides,
                       args.dataset, command=shlex.join(["plusrl", *sys.argv[1:]]))
    print(report.read_text())
    print(f"report: {report} (+ .html, learning curves PNG)")


def _chat_server(args: argparse.Namespace) -> None:
    import uvicorn

    from plusrl.models.backends import BackendConfig, LocalChat
    from plusrl.serving.chat_server import create_chat_app

    app = create_chat_app(LocalChat(BackendConfig(kind="local", model=args.model)), args.model)
    print(f"OpenAI-compatible endpoint: http://{args.host}:{args.port}/v1")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="plusrl", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a reward model (btl, oracle, icl) and evaluate it")
    p.add_argument("--config", help="YAML recipe (see recipes/)")
    p.add_argument("--method", help=f"{' | '.join(METHODS)} (plusrl config show METHOD lists its fields)")
    p.add_argument("--dataset", help="pets | pets-ood | path to local files")
    p.add_argument("--output-dir")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's latest checkpoint")
    p.add_argument("--no-eval", action="store_true")
    p.add_argument("overrides", nargs="*", help="config overrides such as rm_optim.lr=1e-4 reward_model.backbone=smollm2-135m")
    p.set_defaults(func=_train)

    p = sub.add_parser("eval", help="held-out accuracy of a trained run")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--dataset", action="append", help="dataset whose test split to score (repeatable)")
    p.add_argument("--max-records", type=int, default=0)
    p.set_defaults(func=_eval)

    p = sub.add_parser("calibrate", help="choose a trained run's guidance weight w on validation sets (guidance.json)")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--dataset", action="append",
                   help="validation set NAME@SPLIT (repeatable; default: the run's data.calibration_datasets)")
    p.add_argument("--tolerance", type=float,
                   help="choose the largest w within this accuracy of the best (default: the run's data.calibration_tolerance)")
    p.set_defaults(func=_calibrate)

    p = sub.add_parser("export", help="a trained run as a PEFT adapter, a from_pretrained reward model and a model card")
    p.add_argument("run_dir")
    p.add_argument("--out", required=True, help="a new folder")
    p.add_argument("--summaries", action="store_true", help="also the run's held-out summaries (summaries.json)")
    p.set_defaults(func=_export)

    p = sub.add_parser("config", help="show a method's config: every field, its value, default and documentation")
    config_sub = p.add_subparsers(dest="config_command", required=True)
    q = config_sub.add_parser("show", help="every field of METHOD's config (defaults, or a recipe's values)")
    q.add_argument("method", choices=list(METHODS))
    q.add_argument("--config", help="YAML recipe whose values to show")
    q.add_argument("overrides", nargs="*", help="key.sub=value overrides, as for train")
    q.set_defaults(func=_config_show)

    p = sub.add_parser("table", help="one accuracy table from several evaluated runs")
    p.add_argument("run_dirs", nargs="+")
    p.set_defaults(func=_table)

    p = sub.add_parser("data", help="validate or build datasets")
    data_sub = p.add_subparsers(dest="data_command", required=True)
    q = data_sub.add_parser("validate", help="check a records file and say what is wrong, where")
    q.add_argument("path")
    q.add_argument("--split", help="split of a DatasetDict folder")
    q.set_defaults(func=_data_validate)
    q = data_sub.add_parser("build-pets", help="regenerate Pets and Pets-OOD from the fact lists")
    q.add_argument("--out", required=True)
    q.add_argument("--seed", type=int, default=0)
    q.set_defaults(func=_data_build_pets)

    q = data_sub.add_parser("build-ultrafeedback", help="UltraFeedback-P2/P4 from a local copy of openbmb/UltraFeedback")
    q.add_argument("--source", required=True, help="UltraFeedback jsonl/parquet file or folder, as the hub serves it")
    q.add_argument("--variant", choices=["p2", "p4"], required=True)
    q.add_argument("--out", required=True)
    q.add_argument("--seed", type=int, default=42)
    q.set_defaults(func=_data_build_ultrafeedback)

    q = data_sub.add_parser("build-dsp", help="DSP (four domain user types, real text) from its json file")
    q.add_argument("--source", required=True, help="domain_specific_preference.*.json as Linear95/DSP serves it")
    q.add_argument("--out", required=True)
    q.add_argument("--seed", type=int, default=0, help="seed of the query split and of the context draws")
    q.add_argument("--k-context", type=int, default=3, help="past pairs of the same user type per record")
    q.add_argument("--notes", action="store_true", help="open each training user's context with a note in their "
                                                         "own words about the style they like (for written_notes)")
    q.set_defaults(func=_data_build_dsp)

    q = data_sub.add_parser("export", help="write a dataset split in another project's format")
    q.add_argument("--dataset", required=True, help="built-in name or path, as for training")
    q.add_argument("--split", default="train")
    q.add_argument("--format", choices=["plus-authors"], default="plus-authors",
                   help="plus-authors: the JSON lines nam630/pluralistic_user_summary_public trains on")
    q.add_argument("--prompt-family", choices=["auto", "pets", "generic"], default="auto",
                   help="whose summarizer prompt fills context_messages (auto: from the dataset's name)")
    q.add_argument("--out", required=True, help="a .jsonl file")
    q.set_defaults(func=_data_export)

    q = data_sub.add_parser("build-prism", help="PRISM from a local copy of HannahRoseKirk/prism-alignment")
    q.add_argument("--source", required=True, help="folder with survey.jsonl and conversations.jsonl")
    q.add_argument("--out", required=True)
    q.add_argument("--seed", type=int, default=0)
    q.set_defaults(func=_data_build_prism)

    p = sub.add_parser("models", help="prepare the embedded models")
    models_sub = p.add_subparsers(dest="models_command", required=True)
    q = models_sub.add_parser("prepare", help="locate embedded models and convert them once to safetensors "
                                              "(default: the recipes' models; name gemma3-270m to add it)")
    q.add_argument("names", nargs="*")
    q.set_defaults(func=_models_prepare)

    p = sub.add_parser("summarize", help="write a user's summary; export summaries to edit and reuse")
    p.add_argument("--context", help="JSON file: {\"user_id\": ..., \"context\": [items]} or a list of items")
    p.add_argument("--out", help="with --records: write {user_id: summary} JSON here")
    _add_zero_shot_args(p, needs_backend=False)
    p.set_defaults(func=_summarize)

    p = sub.add_parser("judge", help="Alg. 2: LLM-as-judge accuracy without and with each user's summary")
    p.add_argument("--answer", choices=["auto", "free", "constrained"], default="auto",
                   help="free: parse 'Option 1/2' from the reply (the paper's); constrained: the more likely of "
                        "the two (local models); auto: constrained for local, free for openai")
    _add_zero_shot_args(p, needs_backend=True)
    p.set_defaults(func=_judge)

    p = sub.add_parser("personalize", help="Alg. 3: responses without and with the summary, oracle-RM win rate")
    p.add_argument("--oracle-run", required=True, help="run folder of a trained oracle reward model")
    _add_zero_shot_args(p, needs_backend=True)
    p.set_defaults(func=_personalize)

    p = sub.add_parser("serve", help="the personalization service and its web page")
    p.add_argument("--model-dir", help="PLUS run folder (default: embedded summarizer, untrained reward model)")
    p.add_argument("--db", default="plusrl.db", help="SQLite file (created if missing)")
    p.add_argument("--dataset", default="generic", help="prompt family of the summarizer (pets | generic)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--registration", choices=["open", "closed", "admin"], default="open",
                   help="who may create accounts: anyone, nobody, or the admin token only")
    p.add_argument("--max-body-bytes", type=int, default=ServiceLimits.max_body_bytes)
    p.add_argument("--writes-per-minute", type=float, default=ServiceLimits.writes_per_minute, help="per user")
    p.add_argument("--generations-per-minute", type=float, default=ServiceLimits.generations_per_minute,
                   help="per user")
    p.add_argument("--max-context-items", type=int, default=Quotas.max_context_items, help="per user")
    p.add_argument("--max-context-bytes", type=int, default=Quotas.max_context_bytes, help="per user")
    p.add_argument("--max-summary-versions", type=int, default=Quotas.max_summary_versions, help="per user")
    p.set_defaults(func=_serve)

    p = sub.add_parser("reproduce", help="run the methods × datasets of a paper table and write a report")
    p.add_argument("table", choices=list(TABLES), help="pets: Tables 1 and 2 from the same runs")
    p.add_argument("--quick", action="store_true", help="small subsets that fit a 2-core CPU")
    p.add_argument("--seeds", default="0", help="comma-separated seeds (the paper uses 3)")
    p.add_argument("--methods", help="comma-separated subset of the table's methods")
    p.add_argument("--data", action="append", default=[], help="NAME=FOLDER for datasets built from your own download")
    p.add_argument("--dataset", help="run the table's layout on this dataset instead (train and test), e.g. pets")
    p.add_argument("--out", default="runs/reproduce")
    p.add_argument("--report-dir", default="report")
    p.add_argument("overrides", nargs="*", help="config overrides applied to every run")
    p.set_defaults(func=_reproduce)

    p = sub.add_parser("chat-server", help="serve a local chat model at an OpenAI-compatible /v1 endpoint")
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8001)
    p.set_defaults(func=_chat_server)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # `key=value` overrides may follow options (`plusrl reproduce pets --seeds 0 precision=fp32`), which
    # argparse leaves over once a positional argument came before those options
    args, rest = parser.parse_known_args(argv)
    if rest and isinstance(getattr(args, "overrides", None), list) and all(
            "=" in item and not item.startswith("-") for item in rest):
        args.overrides += rest
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        args.func(args)
    except USER_ERRORS as err:
        if args.verbose:
            raise
        print(f"plusrl: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
