"""The Pets builder reproduces the shipped files and has the structure of VPL's Pets."""

from collections import Counter

import pytest

from plusrl.data import pets
from plusrl.data.readers import read_records
from plusrl.data.schema import PreferencePair


def _animal(sentence: str) -> str:
    return sentence.split()[0].lower()


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


@pytest.mark.parametrize("dataset", sorted(pets.VALIDATION_USERS))
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
