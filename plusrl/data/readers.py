"""Read and write records from jsonl / json / parquet files and `datasets` saved to disk.

Every malformed record is reported with its file, line (or row) and field, so a user can
fix the data instead of guessing.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterable, Iterator
from pathlib import Path

from pydantic import ValidationError

from plusrl.data import plus_authors
from plusrl.data.schema import Record, UserContext
from plusrl.io import atomic_write_text


class DataError(ValueError):
    """A dataset file is missing or holds a malformed record."""


def describe_validation_error(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"]) or "<record>"
        parts.append(f"field '{field}': {e['msg']}")
    return "; ".join(parts)


def parse_record(raw: object, where: str) -> Record:
    """A plusrl record, or a record in the PLUS authors' format (detected by its fields)."""
    if not isinstance(raw, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(raw).__name__}")
    if plus_authors.is_plus_authors(raw):
        return plus_authors.to_record(raw, where)
    try:
        return Record.model_validate(raw)
    except ValidationError as err:
        raise DataError(f"{where}: {describe_validation_error(err)}") from None


def read_user_context(path: str | os.PathLike) -> UserContext:
    """A JSON file holding {"user_id": ..., "context": [items]} or just the list of items."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(f"{path}:{err.lineno}: invalid JSON ({err.msg})") from None
    return parse_user_context(raw, str(path))


def parse_user_context(raw, where: str = "context") -> UserContext:
    """{"user_id": ..., "context": [items]} or just the list of items, as parsed JSON."""
    if isinstance(raw, UserContext):
        return raw
    if isinstance(raw, list):
        raw = {"context": raw}
    if not isinstance(raw, dict):
        raise DataError(f"{where}: expected an object with a 'context' list, or a list of context items")
    try:
        return UserContext.model_validate({k: v for k, v in raw.items() if k in ("user_id", "context")})
    except ValidationError as err:
        raise DataError(f"{where}: {describe_validation_error(err)}") from None


def iter_jsonl(path: Path) -> Iterator[tuple[str, object]]:
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                yield where, json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{where}: invalid JSON ({err.msg} at column {err.colno})") from None


def _iter_json(path: Path) -> Iterator[tuple[str, object]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(f"{path}:{err.lineno}: invalid JSON ({err.msg})") from None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a list of records or {{'data': [...]}}")
    for i, raw in enumerate(data):
        yield f"{path}[{i}]", raw


def _drop_nulls(value: object) -> object:
    """Columnar formats give every struct the union of all fields, absent ones as null."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _iter_rows(rows: Iterable[dict], name: str) -> Iterator[tuple[str, object]]:
    for i, raw in enumerate(rows):
        yield f"{name} row {i}", _drop_nulls(raw)


def read_records(path: str | os.PathLike, split: str | None = None) -> list[Record]:
    """Read records from a .jsonl/.json/.parquet file or a `datasets.save_to_disk` folder."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    if path.is_dir():
        rows = _iter_hf_disk(path, split)
    elif path.suffix == ".jsonl":
        rows = iter_jsonl(path)
    elif path.suffix == ".json":
        rows = _iter_json(path)
    elif path.suffix == ".parquet":
        import pyarrow.parquet as pq

        rows = _iter_rows(pq.read_table(path).to_pylist(), str(path))
    else:
        raise DataError(f"{path}: unsupported format (use .jsonl, .json, .parquet or a datasets folder)")
    records = [parse_record(raw, where) for where, raw in rows]
    if not records:
        raise DataError(f"{path}: holds no records")
    return records


def _iter_hf_disk(path: Path, split: str | None) -> Iterator[tuple[str, object]]:
    import datasets

    try:
        ds = datasets.load_from_disk(str(path))
    except FileNotFoundError as err:
        raise DataError(f"{path}: not a dataset saved with `save_to_disk` ({err})") from None
    if isinstance(ds, datasets.DatasetDict):
        if split is None or split not in ds:
            raise DataError(f"{path}: a DatasetDict with splits {list(ds)}; name one (asked: {split!r})")
        ds = ds[split]
    yield from _iter_rows(ds, str(path))


def write_records(records: Iterable[Record], path: str | os.PathLike) -> None:
    """Write records as jsonl atomically: a reader never sees a half-written file."""
    atomic_write_text(Path(path), "".join(r.model_dump_json(exclude_none=True) + "\n" for r in records))


def split_by_user(records: list[Record], test_fraction: float, seed: int) -> tuple[list[Record], list[Record]]:
    """Deterministic train/test split that keeps every user on one side (no user leaks)."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    users = sorted({r.user_id for r in records})
    random.Random(seed).shuffle(users)
    n_test = max(1, round(len(users) * test_fraction))
    test_users = set(users[:n_test])
    train = [r for r in records if r.user_id not in test_users]
    test = [r for r in records if r.user_id in test_users]
    return train, test
