"""Schema, readers (on real-format fixtures, good and bad) and the deterministic splits."""

import json

import pytest

from plusrl.data.readers import (
    DataError,
    parse_record,
    read_records,
    split_by_user,
    write_records,
)
from plusrl.data.registry import load_split
from plusrl.data.schema import Conversation, Note, PreferencePair


def test_valid_jsonl_reads_every_context_kind(fixtures):
    records = read_records(fixtures / "records_valid.jsonl")
    assert [r.user_id for r in records] == ["u1", "u2", "u3"]  # the blank line is skipped
    assert isinstance(records[0].context[0], PreferencePair)
    assert isinstance(records[0].context[1], Note)
    assert isinstance(records[1].context[0], Conversation)
    assert records[1].context[0].messages[1].role == "assistant"
    assert records[0].oracle == "This user prefers dogs over cats."
    assert records[0].meta == {"user_type": "dogs", "controversial": True}
    assert records[2].context == []


@pytest.mark.parametrize(
    "name, expected",
    [
        ("records_bad_json.jsonl", "records_bad_json.jsonl:3: invalid JSON"),
        ("records_missing_field.jsonl", "records_missing_field.jsonl:2: field 'chosen': Field required"),
        ("records_bad_context.jsonl", "records_bad_context.jsonl:1: field 'context.0.pair.chosen'"),
        ("records_unknown_kind.jsonl", "records_unknown_kind.jsonl:1: field 'context.0'"),
    ],
)
def test_malformed_records_name_file_line_and_field(fixtures, name, expected):
    with pytest.raises(DataError) as err:
        read_records(fixtures / name)
    assert expected in str(err.value)


def test_json_parquet_and_datasets_folder_read_the_same_records(fixtures, tmp_path):
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    from_json = read_records(fixtures / "records.json")
    assert [r.prompt for r in from_json] == ["p", "q"]
    rows = [json.loads(r.model_dump_json()) for r in read_records(fixtures / "records_valid.jsonl")]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "train.parquet")
    from_parquet = read_records(tmp_path / "train.parquet")
    assert from_parquet == read_records(fixtures / "records_valid.jsonl")

    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows)}).save_to_disk(tmp_path / "hf")
    assert read_records(tmp_path / "hf", split="train") == from_parquet
    with pytest.raises(DataError, match="splits \\['train'\\]"):
        read_records(tmp_path / "hf", split="test")


def test_missing_file_empty_file_and_unknown_dataset(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_records(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(DataError, match="holds no records"):
        read_records(tmp_path / "empty.jsonl")
    with pytest.raises(DataError, match="unknown dataset 'petz'"):
        load_split("petz", "train")
    with pytest.raises(DataError, match="no 'train' split"):
        load_split("pets-ood", "train")
    with pytest.raises(DataError, match="no test.jsonl"):
        load_split(str(tmp_path), "test")


def test_non_object_line_is_rejected():
    with pytest.raises(DataError, match="x.jsonl:7: expected a JSON object, got list"):
        parse_record([1, 2], "x.jsonl:7")


def test_write_then_read_round_trips(fixtures, tmp_path):
    records = read_records(fixtures / "records_valid.jsonl")
    write_records(records, tmp_path / "out" / "r.jsonl")
    assert read_records(tmp_path / "out" / "r.jsonl") == records
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temp file left


def test_split_by_user_is_deterministic_and_keeps_users_on_one_side():
    records = load_split("pets", "test")
    train_a, test_a = split_by_user(records, 0.25, seed=1)
    train_b, test_b = split_by_user(records, 0.25, seed=1)
    assert train_a == train_b and test_a == test_b
    assert not {r.user_id for r in train_a} & {r.user_id for r in test_a}
    assert len(test_a) == round(0.25 * len(records))
    assert split_by_user(records, 0.25, seed=2)[1] != test_a
