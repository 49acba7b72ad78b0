"""DSP built from a fixture in its repository's format, and the PLUS authors' dataset format read and written."""

import json

import pytest

from plusrl.cli import main
from plusrl.data import dsp, plus_authors
from plusrl.data.readers import DataError, read_records
from plusrl.data.registry import load_restatements, load_split
from plusrl.data.schema import Note, PreferencePair
from plusrl.eval.readability import named_styles, names_style, readability_rate
from plusrl.training.plus import load_written_notes

DSP_FIXTURE = "tests/fixtures/dsp/domain_specific_preference.sample.json"
AUTHORS_FIXTURE = "tests/fixtures/plus_authors"


def test_dsp_splits_by_query_and_labels_each_pair_by_the_users_domain():
    items = dsp.read_items(DSP_FIXTURE)
    splits = dsp.build(items, seed=0, k_context=1)
    queries = {split: {r.meta["query_index"] for r in records} for split, records in splits.items()}
    assert [len(queries[s]) for s in ("train", "validation", "test")] == [11, 2, 3]  # 16 queries: 20 % (3.2), 10 % (1.6), the rest
    assert not (queries["train"] & queries["test"]) and not (queries["train"] & queries["validation"])
    for split, records in splits.items():
        for record in records:
            domain, rival = record.meta["user_type"], record.meta["rejected_type"]
            query, responses = items[record.meta["query_index"]]
            assert (record.prompt, record.chosen, record.rejected) == (query, responses[domain], responses[rival])
            assert record.oracle.startswith(dsp.ORACLE[domain])
            assert record.meta["controversial"] == (rival != dsp.REFERENCE)
            if split != "train":
                assert record.meta["controversial"]  # held-out pairs split the users
            (past,) = record.context  # the same domain's answer chosen, from another query of the same split
            past_index = next(i for i, (q, _) in enumerate(items) if q == past.prompt)
            assert past_index != record.meta["query_index"] and past_index in queries[split]
            assert past.chosen == items[past_index][1][domain]
    train = splits["train"]
    assert any(not r.meta["controversial"] for r in train)
    # the one empty answer (query 5, business) is in no pair
    assert all(r.chosen.strip() and r.rejected.strip() for s in splits.values() for r in s)
    # 3 test queries × 4 domains × 3 rival domains = 36 controversial pairs, less the 6 that hold
    # query 5's empty business answer (3 of the business user, 3 of the others against it)
    assert 5 in queries["test"] and len(splits["test"]) == 36 - 6
    assert dsp.build(items, seed=0, k_context=1)["test"] == splits["test"]  # seeded


def test_dsp_notes_open_training_contexts_with_the_users_own_description_and_change_nothing_else(tmp_path):
    items = dsp.read_items(DSP_FIXTURE)
    plain, noted = dsp.build(items, seed=0, k_context=1), dsp.build(items, seed=0, k_context=1, notes=True)
    assert noted["test"] == plain["test"] and noted["validation"] == plain["validation"]
    for before, after in zip(plain["train"], noted["train"], strict=True):
        note, *pairs = after.context
        assert note.text in dsp.NOTES[after.meta["user_type"]]
        assert pairs == before.context and after.model_copy(update={"context": pairs}) == before
    # what the reward model reads under written_notes: each training user's pair under their note
    assert main(["data", "build-dsp", "--source", DSP_FIXTURE, "--out", str(tmp_path), "--k-context", "1", "--notes"]) == 0
    rows = load_written_notes(str(tmp_path), rows=4, seed=0).rows
    assert [note for _, note in rows] == [r.context[0].text for r in noted["train"]]


def test_dsp_input_errors_name_the_item_and_field(tmp_path):
    items = json.loads(open(DSP_FIXTURE).read())
    del items[3]["responses"]["literature"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(items))
    with pytest.raises(DataError, match=r"bad.json\[3\]: field 'responses.literature' is missing"):
        dsp.read_items(bad)
    bad.write_text(json.dumps({"query": "x"}))
    with pytest.raises(DataError, match="expected a non-empty list"):
        dsp.read_items(bad)
    with pytest.raises(DataError, match="not found"):
        dsp.read_items(tmp_path / "missing.json")
    with pytest.raises(DataError, match="too few to split"):
        dsp.build(dsp.read_items(DSP_FIXTURE), k_context=3)


def test_build_dsp_cli_writes_loadable_splits(tmp_path, capsys):
    assert main(["data", "build-dsp", "--source", DSP_FIXTURE, "--out", str(tmp_path), "--k-context", "1"]) == 0
    assert "11 train" in capsys.readouterr().out
    for split in ("train", "validation", "test"):
        records = load_split(str(tmp_path), split)
        assert records and all(r.meta["user_type"] in dsp.DOMAINS for r in records)


def test_dsp_summaries_are_readable_when_they_name_the_users_style():
    records = dsp.build(dsp.read_items(DSP_FIXTURE), k_context=1)["test"]
    literature = next(r for r in records if r.meta["user_type"] == "literature")
    assert names_style("Prefers poetic answers, rich in imagery and metaphor.", literature)
    assert not names_style("Prefers formal, evidence-based answers grounded in research.", literature)
    assert not names_style("The user asked for advice.", literature)  # names no style
    copied = literature.context[0].chosen  # one sentence in the fixture
    assert not names_style(f"Likes poetry: {copied}", literature)  # a copied context sentence is no summary
    academy = next(r for r in records if r.meta["user_type"] == "academy")
    assert readability_rate(["Likes stories and poems.", "Likes rigorous, research-based answers."],
                            [literature, academy]) == 1.0


def test_dsp_restatements_read_each_note_alone_into_a_summary_that_names_its_style():
    """The reading warm-up's targets name the note's own style and only it, and its validation
    wordings are held out from training."""
    train, validation = load_restatements("dsp-notes"), load_restatements("dsp-notes", "validation")
    assert (len(train), len(validation)) == (4 * len(dsp.DOMAINS), len(dsp.DOMAINS))
    notes = {split: {example.context[0].text for example, _ in examples}
             for split, examples in (("train", train), ("validation", validation))}
    assert notes["train"].isdisjoint(notes["validation"])
    for domain in dsp.DOMAINS:
        restated = [summary for context, summary in train + validation if context.context[0].text in dsp.NOTES[domain]]
        counts = named_styles(restated[0])
        assert set(restated) == {restated[0]} and restated[0].startswith(dsp.SUMMARY_START)
        assert counts[domain] > 0 and sum(counts.values()) == counts[domain]


def test_plus_authors_records_keep_the_summarizer_and_reward_model_pairs_apart():
    first, same, short = load_split(AUTHORS_FIXTURE, "train")
    assert isinstance(first.context[0], Note) and first.prompt == "Tell me a fact about an animal."
    assert first.reward_model_pair == PreferencePair(prompt="Share an animal fact, please.",
                                                     chosen="Dogs have a sense of smell far better than ours.",
                                                     rejected="Cats have whiskers on their legs.")
    assert first.held_out_pair.chosen == "Dogs sweat through their paws."
    assert first.for_reward_model().chosen == "Dogs have a sense of smell far better than ours."
    assert same.reward_model_pair is None and same.for_reward_model() is same  # identical pairs collapse
    assert short.reward_model_pair is None and short.held_out_pair is None
    assert same.user_id == short.user_id != first.user_id  # one user per distinct context


def test_plus_authors_format_round_trips(tmp_path):
    raw = [json.loads(line) for line in open(f"{AUTHORS_FIXTURE}/train.jsonl")]
    records = read_records(f"{AUTHORS_FIXTURE}/train.jsonl")
    written = [plus_authors.from_record(r, "generic") for r in records]
    for original, again in zip(raw, written):
        assert {k: again[k] for k in original} == original
        assert set(plus_authors.FIELDS) <= set(again)  # every key the authors' loader reads
        for name in ("reward_model_pair", "held_out_pair"):  # an absent pair repeats the reward pair
            for key, reward_key in zip(plus_authors.PAIR_FIELDS[name], plus_authors.PAIR_FIELDS["pair"]):
                assert key in original or again[key] == original[reward_key]
    # plusrl records → authors' format (plusrl's summarizer prompt) → the same records
    pets = load_split("pets", "test")[:5]
    out = tmp_path / "pets.jsonl"
    assert main(["data", "export", "--dataset", "pets", "--split", "test", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[0]["context_messages"][0]["content"].endswith("Start your response with ##Summary")
    back = read_records(out)[:5]
    for record, again in zip(pets, back):
        assert again.model_copy(update={"meta": {k: v for k, v in again.meta.items() if k != "context_messages"},
                                        "context": record.context}) == record
        assert again.context[0].text == rows[pets.index(record)]["context"]


def test_malformed_plus_authors_records_are_named(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"context": "c", "context_messages": "m", "reward_prompt": "p", "chosen": "a"}) + "\n")
    with pytest.raises(DataError, match=r"bad.jsonl:1: PLUS-authors record lacks field 'rejected'"):
        read_records(path)
    path.write_text(json.dumps({"context": "c", "context_messages": "m", "reward_prompt": "p", "chosen": "a",
                                "rejected": "b", "train_prompt": "q"}) + "\n")
    with pytest.raises(DataError, match="lacks train_chosen, train_rejected"):
        read_records(path)
    path.write_text(json.dumps({"context": "c", "context_messages": "m", "reward_prompt": "p", "chosen": 3,
                                "rejected": "b"}) + "\n")
    with pytest.raises(DataError, match="field 'chosen' must be text"):
        read_records(path)


def test_reproduce_dsp_uses_the_dsp_recipes_and_names_the_missing_file(tmp_path):
    from plusrl.eval.report import reproduce
    from plusrl.run_dir import RunDir

    md = reproduce("dsp", [0], tmp_path / "runs", tmp_path / "report", quick=True).read_text()
    assert "data missing" in md and "plusrl data build-dsp" in md
    assert main(["data", "build-dsp", "--source", DSP_FIXTURE, "--out", str(tmp_path / "dsp"), "--k-context", "1"]) == 0
    md = reproduce("dsp", [0], tmp_path / "runs", tmp_path / "report", quick=True, data={"dsp": str(tmp_path / "dsp")},
                   methods=["btl"], extra=["data.max_train_records=32", "data.max_eval_records=8"]).read_text()
    assert "data missing" not in md and "| btl | pairs |" in md
    run = RunDir(next((tmp_path / "runs" / "quick").glob("*-pairs-btl-seed0")))
    assert run.config().reward_model.max_length == 256  # plusrl/recipes/dsp/btl.yaml, not the Pets recipe's 128
