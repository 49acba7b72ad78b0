"""UltraFeedback-P2/P4 built from hub-format fixture rows, and the three context types."""

import json

import pytest

from plusrl.cli import main
from plusrl.data import ultrafeedback as uf
from plusrl.data.context_types import GUIDELINE, with_context_type
from plusrl.data.readers import DataError, read_records
from plusrl.data.registry import load_split
from plusrl.data.schema import Conversation, Note, PreferencePair

FIXTURE = "tests/fixtures/ultrafeedback/ultrafeedback_sample.jsonl"


def test_pairs_skip_empty_responses_and_unrated_completions():
    rows = uf.read_rows(FIXTURE)
    pairs = uf.candidate_pairs(rows)
    # 12 instructions × C(4,2) = 72 pairs, minus 3 for the empty response and 3 for the "N/A" rating
    assert len(pairs) == 66
    assert all(p["a"].strip() and p["b"].strip() for p in pairs)


@pytest.mark.parametrize("variant", ["p2", "p4"])
def test_every_record_is_labelled_by_its_user_type_and_is_controversial(variant):
    splits = uf.build(uf.read_rows(FIXTURE), variant)
    types = uf.VARIANTS[variant]
    train_prompts = {r.prompt + r.chosen + r.rejected for r in splits["train"]}
    assert not train_prompts & {r.prompt + r.chosen + r.rejected for r in splits["test"]}  # disjoint pairs
    pairs = {(p["prompt"], p["a"], p["b"]): p for p in uf.candidate_pairs(uf.read_rows(FIXTURE))}
    for record in splits["train"] + splits["test"]:
        user_type = record.meta["user_type"]
        assert user_type in types and user_type.replace("_", "-") in record.oracle
        assert 2 <= len(record.context) <= 4
        pair = pairs.get((record.prompt, record.chosen, record.rejected)) or pairs.get((record.prompt, record.rejected, record.chosen))
        chosen_is_a = pair["a"] == record.chosen
        chosen, rejected = (pair["ratings_a"], pair["ratings_b"]) if chosen_is_a else (pair["ratings_b"], pair["ratings_a"])
        assert chosen[user_type] >= rejected[user_type]  # the user type's attribute decides
        if variant == "p2":
            assert all(chosen[t] != rejected[t] for t in types)  # no ties in P2
            assert {chosen[t] > rejected[t] for t in types} == {True, False}  # the two types disagree


def test_bad_ultrafeedback_rows_name_their_line(tmp_path):
    bad = tmp_path / "uf.jsonl"
    bad.write_text(json.dumps({"instruction": "hi", "completions": []}) + "\n" + json.dumps({"prompt": "no"}) + "\n")
    with pytest.raises(DataError, match=r"uf.jsonl:2: expected an UltraFeedback row"):
        uf.build(uf.read_rows(bad), "p2")
    with pytest.raises(DataError, match="not found.*openbmb/UltraFeedback"):
        uf.read_rows(tmp_path / "missing")


def test_build_ultrafeedback_cli_writes_loadable_splits(tmp_path):
    assert main(["data", "build-ultrafeedback", "--source", FIXTURE, "--variant", "p4", "--out", str(tmp_path)]) == 0
    train = load_split(str(tmp_path), "train")
    assert train and all(r.context for r in train)
    assert read_records(tmp_path / "test.jsonl")


def test_context_types_turn_pairs_into_guidelines_or_unlabelled_conversations():
    records = load_split("pets", "test")[:3]
    guided = with_context_type(records, "guideline")
    assert all(isinstance(r.context[0], Note) and r.context[0].text == GUIDELINE for r in guided)
    assert all(isinstance(i, PreferencePair) for r in guided for i in r.context[1:])
    conversations = load_split("pets", "test", context_type="conversation")[:3]
    for original, converted in zip(records, conversations):
        assert all(isinstance(i, Conversation) for i in converted.context)
        shown = json.dumps([i.model_dump() for i in converted.context])
        assert all(p.chosen in shown and p.rejected not in shown for p in original.context)  # labels are gone
    with pytest.raises(ValueError, match="unknown context type"):
        with_context_type(records, "diary")


def test_prism_keeps_finished_surveyed_users_and_holds_out_conversations_and_users():
    from plusrl.data import prism

    splits = prism.build("tests/fixtures/prism")
    users = {split: {r.user_id for r in records} for split, records in splits.items()}
    # user4 stopped after 5 conversations, user5 skipped the survey
    assert (users["train"] | users["test"] | users["test_users"]) == {"user0", "user1", "user2", "user3"}
    assert users["test_users"] and not users["test_users"] & (users["train"] | users["test"])
    train_conversations = {r.meta["conversation_id"] for r in splits["train"]}
    assert not train_conversations & {r.meta["conversation_id"] for r in splits["test"]}
    for record in splits["train"] + splits["test"] + splits["test_users"]:
        assert len(record.context) == prism.CONTEXT_EXAMPLES and record.chosen != record.rejected
        assert "'values':" in record.oracle and record.meta["conversation_type"] in (
            "unguided", "values guided", "controversy guided")
        target = (record.prompt, record.chosen, record.rejected)
        assert all((p.prompt, p.chosen, p.rejected) != target for p in record.context)  # never its own answer


def test_prism_names_missing_files_and_bad_rows(tmp_path):
    from plusrl.data import prism

    with pytest.raises(DataError, match="survey.jsonl: not found.*prism-alignment"):
        prism.build(tmp_path)
    (tmp_path / "survey.jsonl").write_text('{"user_id": "u"}\n')
    (tmp_path / "conversations.jsonl").write_text("")
    with pytest.raises(DataError, match=r"survey.jsonl:1: a survey row needs"):
        prism.build(tmp_path)


def test_build_prism_cli_and_held_out_user_split(tmp_path):
    assert main(["data", "build-prism", "--source", "tests/fixtures/prism", "--out", str(tmp_path)]) == 0
    assert load_split(str(tmp_path), "test_users") and load_split(str(tmp_path), "train")
