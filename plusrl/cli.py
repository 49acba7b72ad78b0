"""The `plusrl` command line.

    plusrl train --method btl --dataset pets [--config RECIPE.yaml] [key.sub=value ...]
    plusrl eval --run-dir runs/pets-btl [--dataset pets-ood]
    plusrl table runs/pets-btl runs/pets-oracle
    plusrl data validate FILE | plusrl data build-pets --out DIR
    plusrl models prepare
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from plusrl.config import ConfigError, load_config
from plusrl.data.readers import DataError
from plusrl.models.loader import ModelLoadError

USER_ERRORS = (ConfigError, DataError, ModelLoadError, FileExistsError, FileNotFoundError, ValueError)


def _train(args: argparse.Namespace) -> None:
    from plusrl.eval.runs import SUMMARY_METHODS, collect_results, evaluate_run, print_table
    from plusrl.training.plus import PlusConfig, train_plus
    from plusrl.training.reward import RewardTrainConfig, train_reward_model

    overrides = list(args.overrides)
    if args.method:
        overrides.append(f"method={args.method}")
    if args.dataset:
        overrides.append(f"data.dataset={args.dataset}")
    if args.output_dir:
        overrides.append(f"output_dir={args.output_dir}")
    if _method(args.config, overrides) in SUMMARY_METHODS:
        cfg = load_config(PlusConfig, args.config, overrides)
        run_dir = train_plus(cfg, resume=args.resume)
    else:
        cfg = load_config(RewardTrainConfig, args.config, overrides)
        run_dir = train_reward_model(cfg, resume=args.resume)
    if not args.no_eval:
        evaluate_run(run_dir)
        print_table(collect_results([run_dir]))
    print(f"run folder: {run_dir}")


def _method(recipe: str | None, overrides: list[str]) -> str:
    """The method decides which config class a recipe fills: the last override, else the recipe's."""
    import yaml

    for item in reversed(overrides):
        if item.startswith("method="):
            return item.split("=", 1)[1]
    if recipe is not None and Path(recipe).is_file():
        return (yaml.safe_load(Path(recipe).read_text()) or {}).get("method", "btl")
    return "btl"


def _eval(args: argparse.Namespace) -> None:
    from plusrl.eval.runs import evaluate_run, print_table

    print_table(evaluate_run(Path(args.run_dir), args.dataset or None, args.max_records))


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


def _models_prepare(args: argparse.Namespace) -> None:
    from plusrl.models.loader import EMBEDDED, resolve

    for name in args.names or list(EMBEDDED):
        print(f"{name}: {resolve(name)}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="plusrl", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a reward model (btl, oracle, icl) and evaluate it")
    p.add_argument("--config", help="YAML recipe (see recipes/)")
    p.add_argument("--method", help="btl | oracle | icl | plus | plus-untrained")
    p.add_argument("--dataset", help="pets | pets-ood | path to local files")
    p.add_argument("--output-dir")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's latest checkpoint")
    p.add_argument("--no-eval", action="store_true")
    p.add_argument("overrides", nargs="*", help="config overrides such as optim.lr=1e-4 model.backbone=smollm2-135m")
    p.set_defaults(func=_train)

    p = sub.add_parser("eval", help="held-out accuracy of a trained run")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--dataset", action="append", help="dataset whose test split to score (repeatable)")
    p.add_argument("--max-records", type=int, default=0)
    p.set_defaults(func=_eval)

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

    p = sub.add_parser("models", help="prepare the embedded models")
    models_sub = p.add_subparsers(dest="models_command", required=True)
    q = models_sub.add_parser("prepare", help="locate embedded models and convert them once to safetensors")
    q.add_argument("names", nargs="*")
    q.set_defaults(func=_models_prepare)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
