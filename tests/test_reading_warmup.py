"""The reading warm-up: supervised restatements of people's own words before co-training."""

import json

import pytest

from plusrl.config import load_config
from plusrl.data.pets import READING_ANIMALS, load_note_wordings, restatements
from plusrl.data.readers import DataError
from plusrl.data.registry import load_restatements
from plusrl.eval.readability import EDIT_GROUPS, STATEMENTS, VALIDATION_EDIT_PAIRS, VALIDATION_STATEMENTS
from plusrl.training.configs import PlusConfig
from plusrl.training.plus import build, reading_warmup


def test_the_warm_up_never_sees_a_test_or_validation_animal_or_wording():
    held_out = {a for pairs in EDIT_GROUPS.values() for pair in pairs for a in pair} - {"dogs", "cats"}
    held_out |= {a for pair in VALIDATION_EDIT_PAIRS for a in pair} | {"rabbits", "birds"}
    assert not held_out & set(READING_ANIMALS)
    train = restatements("train")
    notes = {context.context[0].text.lower() for context, _ in train}
    for animal in held_out:
        assert not any(animal in note for note in notes), animal
    assert not set(load_note_wordings("train")) & set(STATEMENTS + VALIDATION_STATEMENTS)
    # each example's summary names the animal its note likes, never the other
    for context, summary in train[:50]:
        assert summary.startswith("The user prefers ") and summary.removeprefix("The user prefers ")[:-1] in context.context[0].text.lower()


def test_restatements_from_a_jsonl_file_and_clear_errors(tmp_path):
    good = tmp_path / "mine.jsonl"
    good.write_text(json.dumps({"context": [{"kind": "text", "text": "Jazz, never country."}],
                                "summary": "The user prefers jazz."}) + "\n\n")
    [(context, summary)] = load_restatements(str(good))
    assert context.context[0].text == "Jazz, never country." and summary == "The user prefers jazz."
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"context": [], "summary": "x"}) + "\n")
    with pytest.raises(DataError, match="bad.jsonl:1"):
        load_restatements(str(bad))
    bad.write_text(json.dumps({"context": [{"kind": "text", "text": "hi"}], "summary": " "}) + "\n")
    with pytest.raises(DataError, match="non-empty"):
        load_restatements(str(bad))
    with pytest.raises(DataError, match="unknown restatements"):
        load_restatements(str(tmp_path / "absent.jsonl"))


@pytest.mark.slow
def test_a_few_warm_up_steps_teach_the_summarizer_the_restatements(tmp_path):
    """SmolLM2 + LoRA: the teacher-forced loss of the restating summaries falls over 8 steps."""
    cfg = load_config(PlusConfig, None, ["summarizer.instruction=stated", "summarizer.lora_rank=4",
                                         "reading_warmup.steps=8", "reading_warmup.batch_size=8",
                                         "reading_warmup.lr=1e-3", "report_to=none", f"output_dir={tmp_path}"])
    stats = reading_warmup(build(cfg))
    assert stats["warmup/loss_last"] < 0.5 * stats["warmup/loss_first"], stats
