"""The Pets builder reproduces the shipped files and has the structure of VPL's Pets."""

import re
from collections import Counter

import pytest

from plusrl.data import pets
from plusrl.data.readers import read_records
from plusrl.data.registry import load_split
from plusrl.data.schema import Note, PreferencePair


def _animal(sentence: str) -> str:
    return sentence.split()[0].lower()


def _training_notes(wordings) -> set[str]:
    """Every note the templates make for Pets' training users, either animal liked."""
    return {pets.note_text(w, liked, other) for w in wordings for liked, other in (("dogs", "cats"), ("cats", "dogs"))}


def _held_out_wordings() -> list[str]:
    """The edit check's statements (test and validation), the validation notes and the experiments' validation
    wordings, lower case, single-spaced."""
    from pathlib import Path

    from plusrl.eval.readability import STATEMENTS, VALIDATION_STATEMENTS

    folder = Path(__file__).parents[1] / "experiments" / "note_wordings"
    experiments = [line for f in folder.glob("*_validation.txt") for line in f.read_text().splitlines() if line.strip()]
    return [" ".join(t.lower().split()) for t in
            [*STATEMENTS, *VALIDATION_STATEMENTS, *pets.load_note_wordings("validation"), *experiments]]


@pytest.mark.parametrize("dataset, split", sorted(pets.SIZES))
def test_builder_regenerates_the_shipped_split(dataset, split):
    assert pets.build_split(dataset, split) == read_records(pets.shipped_path(dataset, split))


def test_sizes_and_balanced_user_types():
    assert {k: len(read_records(pets.shipped_path(*k))) for k in pets.SIZES} == pets.SIZES
    types = Counter(r.meta["user_type"] for r in read_records(pets.shipped_path("pets", "train")))
    assert types == {"dogs": 985, "cats": 985}


def test_labels_follow_the_user_type_in_context_and_target():
    facts = pets.load_facts()
    assert all(len(v) == 100 for v in facts.values())
    for dataset, split in pets.SIZES:
        for r in read_records(pets.shipped_path(dataset, split)):
            liked = r.meta["user_type"]
            assert r.oracle.startswith(f"This user prefers {liked} over")
            assert len(r.context) == 3 and all(isinstance(c, PreferencePair) for c in r.context)
            assert all(_animal(c.chosen) == liked for c in r.context)
            if r.meta["controversial"]:
                assert _animal(r.chosen) == liked


def test_test_split_is_controversial_with_unseen_facts():
    facts = pets.load_facts()
    train_facts = {f for fs in facts.values() for f in fs[: pets.N_TRAIN_FACTS]}
    test = read_records(pets.shipped_path("pets", "test"))
    assert all(r.meta["controversial"] for r in test)
    assert not {r.chosen for r in test} & train_facts
    train = read_records(pets.shipped_path("pets", "train"))
    share = sum(r.meta["controversial"] for r in train) / len(train)
    assert 0.45 < share < 0.58
    ood = read_records(pets.shipped_path("pets-ood", "test"))
    assert {_animal(r.chosen) for r in ood} == {"rabbits", "birds"}


@pytest.mark.parametrize("dataset", sorted(set(pets.VALIDATION_USERS) - {"pets-notes-val"}))
def test_validation_sets_hold_no_rabbits_and_no_test_facts(dataset):
    facts = pets.load_facts()
    test_facts = {f for fs in facts.values() for f in fs[pets.N_TRAIN_FACTS :]}
    records = pets.build_validation(dataset)
    texts = [t for r in records for t in (r.chosen, r.rejected, *(x for c in r.context for x in (c.chosen, c.rejected)))]
    assert len(records) == pets.VALIDATION_SIZE
    assert not set(texts) & test_facts and not any(_animal(t) == "rabbits" for t in texts)
    for r in records:  # every context pair shows the user's liked animal chosen over the disliked one
        assert {(_animal(c.chosen), _animal(c.rejected)) for c in r.context} == {(r.meta["user_type"], r.meta["disliked"])}


def test_agreed_validation_scores_the_top_animal_against_the_users_own():
    """pets-val-agreed: training-like users (dogs vs cats in context) whose scored pair is birds vs
    their own animal, which birds win as for every training user; pets-val-prior is its mirror."""
    agreed, prior = pets.build_validation("pets-val-agreed"), pets.build_validation("pets-val-prior")
    assert {(_animal(r.chosen), _animal(r.rejected), r.meta["user_type"]) for r in agreed} == \
        {("birds", "dogs", "dogs"), ("birds", "cats", "cats")}
    assert not any(r.meta["controversial"] for r in agreed)
    assert {(_animal(r.chosen), _animal(r.rejected)) for r in prior} == {("dogs", "birds"), ("cats", "birds")}
    assert {r.oracle for r in agreed} == {"This user prefers dogs over cats.", "This user prefers cats over dogs."}


def test_overturn_validation_scores_a_new_animal_above_the_top_one():
    """pets-val-overturn: pets-val's users (animals never trained on), scored on their liked animal
    against birds, which every training user ranks first; training facts for birds, no rabbits."""
    overturn = pets.build_validation("pets-val-overturn")
    assert {(_animal(r.chosen), _animal(r.rejected)) for r in overturn} == \
        {(liked, "birds") for liked in ("hamsters", "horses", "turtles", "goldfish")}
    assert all(_animal(r.chosen) == r.meta["user_type"] for r in overturn)
    assert {(_animal(c.chosen), _animal(c.rejected)) for r in overturn for c in r.context} == \
        {(liked, disliked) for liked, disliked in pets.VALIDATION_USERS["pets-val"]}


def test_ood_validation_mirrors_pets_ood_on_new_animals():
    """pets-val-ood: users who prefer a new animal over birds or the reverse, contexts and scored pair
    between the two, as Pets-OOD's rabbit and bird users; no rabbits, no test facts."""
    ood = pets.build_validation("pets-val-ood")
    test_facts = {f for facts in pets.load_facts().values() for f in facts[pets.N_TRAIN_FACTS:]}
    assert {r.meta["user_type"] for r in ood} == {"hamsters", "turtles", "birds"}
    for record in ood:
        liked, disliked = record.meta["user_type"], record.meta["disliked"]
        assert "birds" in (liked, disliked) and record.meta["controversial"]
        pairs = [*record.context, record]
        assert all((_animal(p.chosen), _animal(p.rejected)) == (liked, disliked) for p in pairs)
        assert not {f for p in pairs for f in (p.chosen, p.rejected)} & test_facts and "rabbit" not in record.oracle


def test_pets_notes_gives_a_third_of_users_a_note_and_a_third_the_note_alone():
    from plusrl.data.pets import load_note_wordings, note_text

    records = load_split("pets-notes", "train")
    assert [r.user_id for r in records] == [r.user_id for r in load_split("pets", "train")]  # the same users
    with_note = [r for r in records if r.meta["note"]]
    alone = [r for r in with_note if len(r.context) == 1]
    assert 0.6 < len(with_note) / len(records) < 0.73 and 0.28 < len(alone) / len(records) < 0.38
    wordings = load_note_wordings("train")
    for record in with_note[:50]:
        liked = record.meta["user_type"]
        other = next(a for a in ("dogs", "cats") if a != liked)
        assert record.context[-1].text in {note_text(w, liked, other) for w in wordings}
    assert load_split("pets-notes", "train") == records  # deterministic
    assert load_split("pets-notes", "test") == load_split("pets", "test")


def test_note_wordings_hold_out_validation_and_the_eval_statements():
    """Training wordings never appear among the validation notes or the edit check's statements
    (test and validation), whatever the case and spacing."""
    from plusrl.data.pets import load_note_wordings
    from plusrl.eval.readability import STATEMENTS, VALIDATION_STATEMENTS

    def normal(template: str) -> str:
        return " ".join(template.lower().replace("{x}", "X").replace("{y}", "Y").split())

    train = {normal(t) for t in load_note_wordings("train")}
    held_out = {normal(t) for t in [*load_note_wordings("validation"), *STATEMENTS, *VALIDATION_STATEMENTS]}
    assert train and not train & held_out
    orders = [t.lower().find("{x}") < t.lower().find("{y}") for t in load_note_wordings("train")]
    assert 0.3 < sum(orders) / len(orders) < 0.7  # both orders, about as often


def test_polarity_grammar_puts_never_beside_the_liked_animal_as_often_as_beside_the_other():
    """Every grammar note names each animal once, in either order; "never"/"don't"/"do not" stands in
    the liked animal's clause about as often as in the other's; no verb of the edit check's wordings
    is used, and no note is one of its wordings or a validation note."""

    from plusrl.data.note_grammar import COMPLAINT, PRAISE, polarity_wordings
    from plusrl.data.pets import load_note_wordings
    from plusrl.eval.readability import STATEMENTS, VALIDATION_STATEMENTS

    wordings = polarity_wordings()
    assert len(wordings) == len(set(wordings)) > 10_000
    assert all(len(re.findall(r"\{[xX]\}", w)) == len(re.findall(r"\{[yY]\}", w)) == 1 for w in wordings)
    liked_first = [w.lower().find("{x}") < w.lower().find("{y}") for w in wordings]
    assert sum(liked_first) / len(wordings) == 0.5

    def negated_clause(wording: str) -> str:
        """"x" or "y": whose clause holds the negation (clauses split at the animal that comes second)."""
        second = max(("{x}", "{y}"), key=wording.lower().find)
        cut = wording.lower().find(second)
        first_clause = wording[:cut].lower()
        negated_first = re.search(r"\b(never|don't|do not|rarely|nothing)\b", first_clause) is not None
        return {"{x}": "y", "{y}": "x"}[second] if negated_first else second[1]

    negated = [negated_clause(w) for w in wordings if re.search(r"\b(never|don't|do not|rarely|nothing)\b", w)]
    assert 0.4 < negated.count("x") / len(negated) < 0.6
    edit_check = " ".join([*STATEMENTS, *VALIDATION_STATEMENTS]).lower()
    assert not {verb for verb, _ in PRAISE + COMPLAINT if re.search(rf"\b{verb.split()[0]}", edit_check)}
    assert not set(wordings) & {*STATEMENTS, *VALIDATION_STATEMENTS, *load_note_wordings("validation")}


def test_pets_notes_polarity_words_half_its_notes_by_the_grammar():
    from plusrl.data.note_grammar import polarity_wordings

    records = load_split("pets-notes-polarity", "train")
    notes = [(r.context[-1].text, r.meta["user_type"]) for r in records if r.meta["note"]]
    grammar = _training_notes(polarity_wordings())
    share = sum(text in grammar for text, _ in notes) / len(notes)
    assert 0.45 < share < 0.55
    assert load_split("pets-notes-polarity", "train") == records  # deterministic
    assert load_split("pets-notes-polarity", "test") == load_split("pets", "test")


def test_composed_notes_use_clauses_held_out_from_validation_and_the_edit_check():
    """Composed notes name each animal once, half with the liked one first, and no training clause is
    a clause of the edit check's wordings, of the validation notes or of the validation clauses
    (experiments/note_clauses)."""
    from pathlib import Path

    from plusrl.data.note_grammar import composed_wordings, load_clauses

    wordings = composed_wordings()
    assert len(wordings) == len(set(wordings)) > 10_000
    assert sum(w.lower().find("{x}") < w.lower().find("{y}") for w in wordings) / len(wordings) == 0.5

    def normal(text: str) -> str:
        return " ".join(text.lower().split())

    clauses = [normal(c) for kind in ("liked", "disliked") for c in load_clauses(kind)]
    assert all(("{x}" in c) != ("{y}" in c) for c in clauses)
    held_out = _held_out_wordings()
    assert not [c for c in clauses if any(c in t for t in held_out)]
    folder = Path(__file__).parents[1] / "experiments" / "note_clauses"
    validation_clauses = {normal(line) for f in folder.glob("*.txt") for line in f.read_text().splitlines() if line}
    assert validation_clauses and not set(clauses) & validation_clauses


def test_pets_notes_composed_keeps_the_polarity_half_and_composes_half_of_the_rest():
    from plusrl.data.note_grammar import composed_wordings, polarity_wordings

    records = load_split("pets-notes-composed", "train")
    notes = [r.context[-1].text for r in records if r.meta["note"]]
    polarity, composed = _training_notes(polarity_wordings()), _training_notes(composed_wordings())
    assert 0.45 < sum(n in polarity for n in notes) / len(notes) < 0.55
    assert 0.2 < sum(n in composed for n in notes) / len(notes) < 0.3
    assert [r.user_id for r in records] == [r.user_id for r in load_split("pets-notes-polarity", "train")]
    assert load_split("pets-notes-composed", "test") == load_split("pets", "test")


def test_comparisons_name_each_animal_once_in_both_orders_and_hold_out_the_edit_check():
    from plusrl.data.note_grammar import compared_wordings

    wordings = compared_wordings()
    assert len(wordings) == len(set(wordings)) > 500
    assert all(w.lower().count("{x}") == w.lower().count("{y}") == 1 for w in wordings)
    assert sum(w.lower().find("{x}") < w.lower().find("{y}") for w in wordings) / len(wordings) == 0.5
    held_out = _held_out_wordings()
    assert not [w for w in wordings if any(w.lower().rstrip(".") in t or t.rstrip(".") in w.lower() for t in held_out)]


def test_pets_notes_four_sources_takes_a_quarter_of_its_notes_from_each():
    from plusrl.data.note_grammar import composed_wordings, compared_wordings, polarity_wordings

    records = load_split("pets-notes-four-sources", "train")
    notes = [r.context[-1].text for r in records if r.meta["note"]]
    for wordings in (polarity_wordings(), composed_wordings(), compared_wordings(), pets.load_note_wordings("train")):
        texts = _training_notes(wordings)
        assert 0.2 < sum(n in texts for n in notes) / len(notes) < 0.3


def test_pets_notes_validation_users_have_a_note_alone_about_animals_never_trained_on():
    from plusrl.data.pets import ANIMALS

    records = load_split("pets-notes-val", "validation")
    assert len(records) == 200 and all(len(r.context) == 1 and r.context[0].kind == "text" for r in records)
    assert not {r.meta["user_type"] for r in records} & set(ANIMALS)
    assert all(r.meta["user_type"] in r.context[0].text.lower() for r in records)
    assert {(_animal(r.chosen), _animal(r.rejected)) for r in records} == set(pets.VALIDATION_USERS["pets-notes-val"])


def test_pets_notes_many_animals_keeps_the_dog_and_cat_notes_and_adds_notes_about_other_training_animals():
    """Half the notes are about two of NOTE_ANIMALS, the note alone and a pair of their facts (the liked
    animal's chosen), in the wordings of pets-notes-composed; the other users are that dataset's users.
    No note animal is one Pets-OOD, the validation sets or the edit check use, and no fact names one."""
    from plusrl.eval.readability import EDIT_GROUPS, VALIDATION_EDIT_PAIRS

    composed, records = load_split("pets-notes-composed", "train"), load_split("pets-notes-many-animals", "train")
    assert [r.user_id for r in records] == [r.user_id for r in composed]
    moved = [r for r, before in zip(records, composed) if r != before]
    assert all(r.meta["user_type"] in ("dogs", "cats") for r, before in zip(records, composed) if r == before)
    assert 0.45 < len(moved) / sum(r.meta["note"] for r in records) < 0.55
    facts = pets.load_note_animal_facts()
    for r in moved:
        liked, other = r.meta["user_type"], r.meta["disliked"]
        assert {liked, other} <= set(pets.NOTE_ANIMALS) and liked != other
        note = r.context[0].text.lower()
        assert len(r.context) == 1 and liked in note and "dogs" not in note and "cats" not in note
        assert r.chosen in facts[liked] and r.rejected in facts[other]
    named = {a for pairs in EDIT_GROUPS.values() for pair in pairs for a in pair} | {a for p in VALIDATION_EDIT_PAIRS for a in p}
    assert not named & set(pets.MORE_NOTE_ANIMALS)
    other_animals = re.compile(r"\b(" + "|".join(a.removesuffix("s") for a in named) + r")s?\b")
    assert not [f for fs in facts.values() for f in fs if other_animals.search(f.lower())]
    assert load_split("pets-notes-many-animals", "test") == load_split("pets", "test")


def test_pets_notes_unnamed_third_scores_a_third_animal_above_the_disliked_or_below_the_liked():
    """Same users and notes as pets-notes-many-animals; of the users with a note about two of NOTE_ANIMALS,
    about two in three score a fact about a third animal their note never names, never against itself."""
    base, records = load_split("pets-notes-many-animals", "train"), load_split("pets-notes-unnamed-third", "train")
    assert [(r.user_id, r.context) for r in records] == [(r.user_id, r.context) for r in base]
    facts = pets.load_note_animal_facts()
    animal_of = {fact: animal for animal, fs in facts.items() for fact in fs}
    noted = [r for r in records if r.meta["user_type"] in pets.NOTE_ANIMALS]
    kinds = Counter()
    for r in noted:
        chosen, rejected = animal_of[r.chosen], animal_of[r.rejected]
        liked, other = r.meta["user_type"], r.meta["disliked"]
        assert chosen != rejected and (chosen == liked or rejected == other)
        kinds["third" if {chosen, rejected} != {liked, other} else "named"] += 1
    assert 0.6 < kinds["third"] / len(noted) < 0.73


def test_pets_notes_comparisons_words_an_eighth_of_the_notes_as_a_comparison():
    """pets-notes-unnamed-third's users and mix, with half of its hand-written notes worded by the comparison
    grammar ("I side with {x} over {y}."): about one note in eight."""
    from plusrl.data.note_grammar import compared_wordings

    base, records = load_split("pets-notes-unnamed-third", "train"), load_split("pets-notes-comparisons", "train")
    assert [r.user_id for r in records] == [r.user_id for r in base]
    noted = [r for r in records if r.meta["note"]]
    comparisons = {}  # (liked, other) → every comparison note about them
    compared = 0
    for r in noted:
        liked = r.meta["user_type"]
        other = r.meta.get("disliked") or next(a for a in ("dogs", "cats") if a != liked)
        note = next(item.text for item in r.context if isinstance(item, Note))
        if (liked, other) not in comparisons:
            comparisons[liked, other] = {pets.note_text(t, liked, other) for t in compared_wordings()}
        compared += note in comparisons[liked, other]
    assert 0.09 < compared / len(noted) < 0.16


def test_pets_notes_more_animals_puts_three_notes_in_four_on_twice_as_many_animals():
    """pets-notes-unnamed-third's wordings and users, with three in four notes about two of the 24 animals of
    MORE_NOTE_ANIMALS (each of them in some note); the notes about dogs and cats are pets-notes-composed's."""
    composed, records = load_split("pets-notes-composed", "train"), load_split("pets-notes-more-animals", "train")
    assert [r.user_id for r in records] == [r.user_id for r in composed]
    moved = [r for r in records if r.meta["user_type"] in pets.MORE_NOTE_ANIMALS]
    assert 0.7 < len(moved) / sum(r.meta["note"] for r in records) < 0.8
    assert {r.meta["user_type"] for r in moved} == set(pets.MORE_NOTE_ANIMALS) == set(pets.load_note_animal_facts())
    assert len(pets.MORE_NOTE_ANIMALS) == 2 * len(pets.NOTE_ANIMALS)
    kept = [(r, before) for r, before in zip(records, composed) if r.meta["user_type"] in ("dogs", "cats")]
    assert kept and all(r == before for r, before in kept)
