"""The readability and edit-following checks, on sentences whose answer is obvious to a person."""

import pytest
import torch

from plusrl.data.registry import load_split
from plusrl.eval.readability import (EDIT_GROUPS, STATEMENTS, VALIDATION_EDIT_PAIRS, edit_cases, edit_following, is_readable,
                                     preferred_animals)

ANIMALS = ["birds", "cats", "dogs", "rabbits", "hamsters", "goldfish"]


@pytest.mark.parametrize("text, liked", [
    ("The user prefers cats over dogs.", {"cats"}),
    ("I love dogs and dislike cats.", {"dogs"}),
    ("Prefers dogs; not a fan of cats.", {"dogs"}),
    ("The user does not like dogs but likes cats.", {"cats"}),
    ("I'm a dog person.", {"dogs"}),
    ("Goldfish are my favourite animals. Hamsters bore me.", {"goldfish"}),
    ("I'd rather hear about rabbits than birds.", {"rabbits"}),
    ("The user prefers Rabbits to Birds.", {"rabbits"}),
    ("The user prefers to hear about dogs.", {"dogs"}),
    ("Never liked cats.", set()),
    ("Cats nap in sunny spots to keep warm.", set()),
])
def test_preferred_animals_reads_what_a_person_means(text, liked):
    assert preferred_animals(text, ANIMALS) == liked


def test_a_copied_context_sentence_is_not_readable_and_a_stated_preference_is():
    record = next(r for r in load_split("pets", "test") if r.meta["user_type"] == "dogs")
    copied = f"The user chose: {record.context[0].chosen} {record.context[0].rejected}"
    assert not is_readable(copied, record, ANIMALS)
    assert is_readable("The user prefers dogs over cats.", record, ANIMALS)
    assert not is_readable("The user prefers cats over dogs.", record, ANIMALS)
    assert not is_readable("Likes dogs and cats.", record, ANIMALS)


def test_edit_following_scores_every_statement_both_ways_on_held_out_facts():
    cases = edit_cases(facts_per_pair=2)
    n_pairs = sum(len(pairs) for pairs in EDIT_GROUPS.values())
    assert len(cases) == n_pairs * len(STATEMENTS) * 2
    train_facts = {f for r in load_split("pets", "train") for f in (r.chosen, r.rejected)}
    assert not {c.liked_fact for c in cases} & train_facts

    animals = [a for pairs in EDIT_GROUPS.values() for pair in pairs for a in pair]

    def first_named(statement: str) -> str:
        return min((statement.lower().find(a), a) for a in animals if a in statement.lower())[1]

    def scorer(liked_first: bool):
        def score(conditionings, prompts, responses):
            import torch
            return torch.tensor([float((first_named(c) == r.split()[0].lower()) == liked_first)
                                 for c, r in zip(conditionings, responses)])
        return score

    # the first eight statements name the liked animal first, the last four the disliked one: a reader
    # that takes the first animal named as the liked one passes exactly the first eight
    liked_first = {t: float(t.lower().find("{x}") < t.lower().find("{y}") or "{y}" not in t.lower()) for t in STATEMENTS}
    assert list(liked_first.values()) == [1.0] * 8 + [0.0] * 4
    assert {t: c.order for c in cases for t in [c.template]} == {
        t: "liked first" if liked_first[t] else "liked second" for t in STATEMENTS}
    assert edit_following(scorer(True), cases) == {
        "edit_following": 8 / 12, "n_cases": len(cases), **{g: 8 / 12 for g in EDIT_GROUPS},
        "by_order": {"liked first": 1.0, "liked second": 0.0},
        "by_group_and_order": {f"{g}, {o}": float(o == "liked first") for g in EDIT_GROUPS
                               for o in ("liked first", "liked second")},
        "by_statement": liked_first}
    assert [c.order for c in edit_cases(validation=True)].count("liked second") * 2 == len(edit_cases(validation=True))
    own = edit_cases(validation=True, templates=["{Y} wear me out. {X} never have."])  # a probe's own wording
    assert {(c.statement, c.liked, c.group) for c in own} == {
        (f"{y.capitalize()} wear me out. {x.capitalize()} never have.", x, "validation") for x, y in VALIDATION_EDIT_PAIRS}
    assert len(own) == 4 * len(VALIDATION_EDIT_PAIRS) and {c.order for c in own} == {"liked second"}
    assert edit_following(scorer(False), cases)["edit_following"] == 4 / 12

    # restated first (as a summarizer would: "The user prefers X."), every wording reads right
    liked = {c.statement: c.liked_fact.split()[0].lower() for c in cases}
    restated = edit_following(scorer(True), cases, restate=lambda texts: [f"The user prefers {liked[t]}." for t in texts])
    assert restated["edit_following"] == 1.0
    assert restated["restated_as"]["Less cats, more dogs."] == "The user prefers dogs."
    assert restated["restated_right"] == 1.0
    # a restater that names the first animal it reads is right on the 8 liked-first wordings only
    # ("I'm a {x} person." names one animal, which is the liked one)
    copied = edit_following(scorer(True), cases, restate=lambda texts: [f"The user prefers {first_named(t)}." for t in texts])
    assert copied["restated_right"] == 8 / 12
    assert not cases[0].restated_right(f"The user prefers {cases[0].liked} over {cases[0].other}.")

    def likes_the_last_named(conditionings, prompts, responses):
        def last_named(statement: str) -> str:
            return max((statement.lower().rfind(a), a) for a in animals if a in statement.lower())[1]
        return torch.tensor([float(last_named(c) == r.split()[0].lower()) for c, r in zip(conditionings, responses)])

    # a reader that takes the last animal named is right where a statement names one animal or the liked one last
    assert edit_following(likes_the_last_named, cases)["by_statement"] == {
        t: float(t == "I'm a {x} person." or not liked_first[t]) for t in STATEMENTS}


def test_word_order_of_older_edit_checks_comes_from_their_per_wording_rates():
    from plusrl.eval.readability import share_by_order

    by_statement = {"I love {x} and dislike {y}.": 1.0, "I'm a {x} person.": 0.5, "Less {y}, more {x}.": 0.25}
    assert share_by_order(by_statement) == {"liked first": 0.75, "liked second": 0.25}
