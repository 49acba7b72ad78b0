"""UltraFeedback-P2 / P4 (as built by VPL, used by PLUS), from UltraFeedback in the hub's format.

Input: `openbmb/UltraFeedback` rows as the hub serves them (jsonl, json or parquet): each row
has `instruction` and `completions[]`, each completion a `response` and `annotations` with a
`Rating` ("1"-"5" or "N/A") for helpfulness, honesty, instruction_following, truthfulness.

- Pairs are two completions of one instruction; pairs with an empty response or an "N/A"
  rating are dropped. 10 % of pairs (seed 42) form the test split.
- A user type is one attribute: it prefers the response rated higher on it (ties at random).
  P4: four types, controversial pairs only (the types disagree). P2: helpfulness vs honesty,
  pairs where neither attribute ties and the two disagree.
- Each record is one (pair, user type) with 2-4 context pairs labelled by the same type,
  drawn from all pairs but its own (targets are what the splits hold out).
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path

from plusrl.data.readers import DataError, iter_jsonl
from plusrl.data.schema import PreferencePair, Record

ATTRIBUTES = ("helpfulness", "honesty", "instruction_following", "truthfulness")
VARIANTS = {"p2": ("helpfulness", "honesty"), "p4": ATTRIBUTES}
SIZES = {"p2": {"train": 10_000, "test": 2_000}, "p4": {"train": 40_000, "test": 2_000}}
ORACLE = ("I prioritize {attributes} in AI assistant's responses. Now based on this information about myself, "
          "here's a new question:")


def read_rows(path: str | Path) -> list[tuple[str, dict]]:
    """(where, row) for every UltraFeedback row of a jsonl/json/parquet file or a folder of them."""
    import json

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: not found. Download openbmb/UltraFeedback (e.g. its jsonl or parquet files) "
                        f"and pass the file or folder with --source")
    files = sorted(p for p in path.rglob("*") if p.suffix in (".jsonl", ".json", ".parquet")) if path.is_dir() else [path]
    if not files:
        raise DataError(f"{path}: no .jsonl, .json or .parquet files in this folder")
    rows = []
    for file in files:
        if file.suffix == ".parquet":
            import pyarrow.parquet as pq

            rows += [(f"{file}[{i}]", r) for i, r in enumerate(pq.read_table(file).to_pylist())]
        elif file.suffix == ".jsonl":
            rows += list(iter_jsonl(file))
        else:
            rows += [(f"{file}[{i}]", r) for i, r in enumerate(json.loads(file.read_text(encoding="utf-8")))]
    return rows


def _rating(completion: dict, attribute: str) -> int | None:
    rating = ((completion.get("annotations") or {}).get(attribute) or {}).get("Rating")
    return int(rating) if isinstance(rating, (str, int)) and str(rating).strip().isdigit() else None


def candidate_pairs(rows: list[tuple[str, dict]]) -> list[dict]:
    """Every pair of usable completions of each instruction, with both completions' ratings."""
    pairs = []
    for where, row in rows:
        if not isinstance(row, dict) or not isinstance(row.get("instruction"), str) or not isinstance(
                row.get("completions"), list):
            raise DataError(f"{where}: expected an UltraFeedback row with 'instruction' (text) and 'completions' (list)")
        usable = []
        for completion in row["completions"]:
            ratings = {a: _rating(completion, a) for a in ATTRIBUTES}
            response = completion.get("response")
            if isinstance(response, str) and response.strip() and None not in ratings.values():
                usable.append((response, ratings))
        for (resp_a, rat_a), (resp_b, rat_b) in itertools.combinations(usable, 2):
            pairs.append({"prompt": row["instruction"], "a": resp_a, "b": resp_b, "ratings_a": rat_a,
                          "ratings_b": rat_b})
    return pairs


def _preferences(pair: dict, user_types, rng: random.Random, allow_ties: bool) -> dict[str, bool] | None:
    """user type → True if it prefers a over b; None when a tie is not allowed."""
    prefs = {}
    for attribute in user_types:
        diff = pair["ratings_a"][attribute] - pair["ratings_b"][attribute]
        if diff == 0 and not allow_ties:
            return None
        prefs[attribute] = diff > 0 if diff else rng.random() < 0.5
    return prefs


def build(rows: list[tuple[str, dict]], variant: str, seed: int = 42, sizes: dict | None = None) -> dict[str, list[Record]]:
    """{'train': [...], 'test': [...]} records of UltraFeedback-P2 or -P4."""
    if variant not in VARIANTS:
        raise DataError(f"unknown UltraFeedback variant {variant!r} (p2 | p4)")
    user_types, sizes = VARIANTS[variant], sizes or SIZES[variant]
    rng = random.Random(seed)
    labelled = []
    for pair in candidate_pairs(rows):
        prefs = _preferences(pair, user_types, rng, allow_ties=variant == "p4")
        if prefs is not None and len(set(prefs.values())) > 1:  # controversial: the user types disagree
            labelled.append((pair, prefs))
    if len(labelled) < 2:
        raise DataError(f"only {len(labelled)} controversial pairs for {variant}; need a larger UltraFeedback sample")
    rng.shuffle(labelled)
    n_test = max(1, len(labelled) // 10)
    splits = {"test": labelled[:n_test], "train": labelled[n_test:]}

    def as_pair(pair, prefers_a) -> PreferencePair:
        chosen, rejected = (pair["a"], pair["b"]) if prefers_a else (pair["b"], pair["a"])
        return PreferencePair(prompt=pair["prompt"], chosen=chosen, rejected=rejected)

    out = {}
    for split, items in splits.items():
        records = []
        for index, (pair, prefs) in enumerate(items):
            for user_type in user_types:
                # past pairs of the same user type, from any split: only the target pairs are held out
                others = [other for other in labelled if other[0] is not pair]
                context = [as_pair(o[0], o[1][user_type]) for o in rng.sample(others, min(len(others), rng.randint(2, 4)))]
                target = as_pair(pair, prefs[user_type])
                records.append(Record(
                    user_id=f"uf-{variant}-{split}-{index:06d}-{user_type}", context=context, prompt=target.prompt,
                    chosen=target.chosen, rejected=target.rejected,
                    oracle=ORACLE.format(attributes=user_type.replace("_", "-")),
                    meta={"user_type": user_type, "controversial": True}))
        rng.shuffle(records)
        out[split] = records[: sizes[split]]
    return out
