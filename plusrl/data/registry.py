"""Dataset names → records. A name is a built-in dataset or a path to local files."""

from __future__ import annotations

import json
from pathlib import Path

from plusrl.data import dsp, pets
from plusrl.data.context_types import with_context_type
from plusrl.data.readers import DataError, read_records
from plusrl.data.schema import Record, UserContext

BUILTIN = {"pets": ("train", "test"), "pets-ood": ("test",), "pets-val": ("validation",), "pets-val-prior": ("validation",),
           "pets-val-agreed": ("validation",), "pets-val-overturn": ("validation",), "pets-val-ood": ("validation",),
           "proxy-pets": ("train", "test"), "proxy-pets-ood": ("test",), "pets-notes": ("train", "test"),
           "pets-notes-polarity": ("train", "test"), "pets-notes-composed": ("train", "test"),
           "pets-notes-four-sources": ("train", "test"), "pets-notes-many-animals": ("train", "test"),
           "pets-notes-unnamed-third": ("train", "test"),
           "pets-notes-more-animals": ("train", "test"), "pets-notes-comparisons": ("train", "test"),
           "pets-notes-val": ("validation",)}


def load_split(dataset: str, split: str, context_type: str = "pairs") -> list[Record]:
    """Records of one split, their contexts given as `context_type` (pairs | guideline | conversation).

    `dataset` is a built-in name ("pets", "pets-ood") or a path: a file (used whatever the
    split), a folder holding `{split}.jsonl|.json|.parquet`, or a `datasets` folder.
    """
    return with_context_type(_load(dataset, split), context_type)


def _load(dataset: str, split: str) -> list[Record]:
    if dataset in BUILTIN:
        if split not in BUILTIN[dataset]:
            raise DataError(f"dataset {dataset!r} has no {split!r} split (it has: {', '.join(BUILTIN[dataset])})")
        if split == "validation":
            return pets.build_validation(dataset)
        if dataset.startswith("proxy-"):
            return pets.build_split(dataset, split)
        if dataset in pets.NOTE_MIXES:  # Pets with notes in its training contexts; Pets' own test users
            if split == "test":
                return read_records(pets.shipped_path("pets", split))
            return pets.build_notes_train(pets.NOTE_MIXES[dataset])
        return read_records(pets.shipped_path(dataset, split))
    path = Path(dataset)
    if path.is_file():
        return read_records(path)
    if path.is_dir():
        for suffix in (".jsonl", ".json", ".parquet"):
            if (path / f"{split}{suffix}").is_file():
                return read_records(path / f"{split}{suffix}")
        if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
            return read_records(path, split=split)
        raise DataError(f"{path}: no {split}.jsonl, {split}.json or {split}.parquet in this folder")
    raise DataError(
        f"unknown dataset {dataset!r}: use one of {', '.join(BUILTIN)} or a path to local files"
    )


RESTATEMENTS = {"pets-notes": pets.restatements, "dsp-notes": dsp.restatements}
"""Built-in sets of (a person's own words, the summary restating them) for the reading warm-up."""


def load_restatements(name: str, split: str = "train") -> list[tuple[UserContext, str]]:
    """(context, summary) examples: a built-in set (RESTATEMENTS) or a JSONL file whose lines are
    {"context": [context items], "summary": "…"} (the split is then the file's)."""
    if name in RESTATEMENTS:
        return RESTATEMENTS[name](split)
    path = Path(name)
    if not path.is_file():
        raise DataError(f"unknown restatements {name!r}: use one of {', '.join(RESTATEMENTS)} or a JSONL file")
    examples = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            summary = row["summary"]
            if not isinstance(summary, str) or not summary.strip():
                raise ValueError("summary must be non-empty text")
            examples.append((UserContext(context=row["context"]), summary))
        except (ValueError, KeyError, TypeError) as e:  # (pydantic's ValidationError is a ValueError)
            raise DataError(f"{path}:{number}: not a restatement ({{\"context\": [...], \"summary\": \"...\"}}): {e}") from e
    if not examples:
        raise DataError(f"{path}: no restatements in it")
    return examples
