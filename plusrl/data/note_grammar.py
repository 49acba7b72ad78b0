"""Note wordings from three small grammars.

Polarity (`polarity_wordings`): a reader learns that "never" flips the verb it stands by, not the
animal it stands beside.

Hand-written notes put "never", "not", "no" beside the disliked animal far more often than beside
the liked one ("Always {x}, never {y}."); a reader taught on them reads "{Y} bore me; {x} never do."
as disliking {x}. Here each note is one clause about each animal, and a clause means its verb's
polarity times its negation, in every combination:

    "{y} bother me"                  a complaint           → {y} disliked
    "{x} never bother me"            a negated complaint   → {x} liked
    "{x} delight me"                 praise                → {x} liked
    "{y} never delight me"           negated praise        → {y} disliked
    "{Y} bother me; {x} never do."   the verb elided from the first clause and negated → {x} liked

so "never" stands beside the liked animal about as often as beside the other. Verbs, clause forms
and joins are written for this; none of the verbs of the edit check's wordings (test or
validation, plusrl.eval.readability) appears, nor does any of its wordings (tests/test_pets.py).

Composition (`composed_wordings`): one clause about each animal, in many more kinds of clause than
verbs ("I keep away from {y}", "{x} get my vote", "hold the {y}"), in either order, joined as people
join two statements. People write their preference that way ("Cats? Not for me. Dogs all the way."),
and which of the two clauses a reader trusts should come from what each says, not from its place or
its wording: 32 clauses of each kind (`pets_facts/notes/liked_clauses.txt`, `disliked_clauses.txt`),
none of them a clause of the edit check's wordings or of the validation clauses that
experiments/note_reading_rm.py composes (tests/test_pets.py).

Comparison (`compared_wordings`): one clause naming both animals, where only the syntax says which is
liked: "I side with {x} over {y}", "Instead of {y}, I go for {x}", "{Y} lose out to {x}". A clause
of two sentiments says which animal is liked by what it says of each; a comparison says nothing good
or bad of either, and a reader taught on sentiments alone reads "over {y}" by chance.
"""

from __future__ import annotations

import itertools
from functools import cache
from importlib import resources

# (plural present, third-person singular): "{a} bother me" / "nothing about {a} bothers me"
PRAISE = [("delight me", "delights me"), ("make me smile", "makes me smile"), ("fascinate me", "fascinates me"),
          ("make me happy", "makes me happy"), ("calm me down", "calms me down"), ("win me over", "wins me over"),
          ("brighten my day", "brightens my day"), ("charm me", "charms me"), ("excite me", "excites me"),
          ("amuse me", "amuses me"), ("thrill me", "thrills me"), ("comfort me", "comforts me"),
          ("inspire me", "inspires me"), ("interest me", "interests me")]
COMPLAINT = [("bother me", "bothers me"), ("put me to sleep", "puts me to sleep"),
             ("get on my nerves", "gets on my nerves"), ("scare me", "scares me"), ("stress me out", "stresses me out"),
             ("frustrate me", "frustrates me"), ("disappoint me", "disappoints me"), ("gross me out", "grosses me out"),
             ("drive me mad", "drives me mad"), ("upset me", "upsets me"), ("bug me", "bugs me"),
             ("exhaust me", "exhausts me"), ("depress me", "depresses me"), ("weary me", "wearies me")]
# A clause about {a} with verb {v} ({v3}: its third-person singular), and whether it negates the verb.
CLAUSES = [("{a} {v}", False), ("{a} really {v}", False), ("{a} always {v}", False),
           ("{a} never {v}", True), ("{a} don't {v}", True), ("{a} do not {v}", True),
           ("{a} rarely {v}", True), ("nothing about {a} {v3}", True)]
# The second clause with the first clause's verb elided: it means the opposite of the first either way.
ELIDED_AFTER_AFFIRMED = ["{a} never do", "{a} don't", "{a} do not", "{a} never did", "{a} never have", "{a} never would"]
ELIDED_AFTER_NEGATED = ["{a} do", "{a} always do", "{a} often do", "{a} always have", "{a} still do"]
# How the two clauses join, and whether the second then starts a sentence.
JOINS = [("; ", False), (". ", True), (", but ", False), (", while ", False), (", whereas ", False), (" - ", False)]
COMPOSED_JOINS = [*JOINS, (" and ", False), ("! ", True)]


def _clause(form: str, animal: str, verb: tuple[str, str]) -> str:
    return form.format(a="{" + animal + "}", v=verb[0], v3=verb[1])


def sentence_start(clause: str) -> str:
    """A clause template as the start of a sentence: "{x} rock" → "{X} rock", "please no {y}" → "Please no {y}"."""
    return clause[:2].upper() + clause[2:] if clause.startswith(("{x}", "{y}")) else clause[0].upper() + clause[1:]


@cache
def polarity_wordings() -> tuple[str, ...]:
    """Every note template the grammar makes ({x} liked, {y} not; {X}, {Y} capitalised), in a
    fixed order: 26,040 of them, half naming the liked animal first."""
    wordings = []
    for first, second in (("x", "y"), ("y", "x")):
        first_liked = first == "x"
        for (form, negated), verbs, join in itertools.product(CLAUSES, (PRAISE, COMPLAINT), JOINS):
            if ((verbs is PRAISE) != negated) != first_liked:
                continue  # the clause would say the opposite of what its animal is to this person
            for verb in verbs:
                seconds = [e.format(a="{" + second + "}")
                           for e in (ELIDED_AFTER_NEGATED if negated else ELIDED_AFTER_AFFIRMED)]
                seconds += [_clause("{a} {v}", second, v) for v in (COMPLAINT if first_liked else PRAISE)]
                for text in seconds:
                    wordings.append(f"{sentence_start(_clause(form, first, verb))}{join[0]}"
                                    f"{sentence_start(text) if join[1] else text}.")
    return tuple(wordings)


def load_clauses(kind: str) -> list[str]:
    """The training clauses about the liked animal ({x}, kind "liked") or the other ({y}, "disliked")."""
    path = resources.files("plusrl.data") / "pets_facts" / "notes" / f"{kind}_clauses.txt"
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@cache
def composed_wordings() -> tuple[str, ...]:
    """Every note template made of one liked and one disliked clause, in either order and every
    join, in a fixed order: 16,384 of them, half naming the liked animal first."""
    liked, disliked = load_clauses("liked"), load_clauses("disliked")
    wordings = []
    for like, dislike, (join, starts_sentence) in itertools.product(liked, disliked, COMPOSED_JOINS):
        for first, second in ((like, dislike), (dislike, like)):
            wordings.append(f"{sentence_start(first)}{join}{sentence_start(second) if starts_sentence else second}.")
    return tuple(wordings)


# Comparisons, both orders: "{choose} {x} {comparator} {y}" and "{Lead} {y}, {choose} {x}";
# "{x} {beat} {y}" and "{y} {lose to} {x}"; each with or without an ending.
CHOOSE = ["I go for", "I lean towards", "I side with", "I vote for", "I'd opt for", "put me down for", "I stick with",
          "sign me up for", "I'm backing", "I root for"]
COMPARATORS = ["over", "instead of", "before", "ahead of", "above", "sooner than"]
LEADS = ["instead of", "in place of", "sooner than", "over", "rather than", "before"]
BEAT = ["beat", "outshine", "top", "come before", "trump", "edge out", "win against", "rank above"]
LOSE_TO = ["lose out to", "come after", "rank below", "come second to", "can't compete with", "pale next to",
           "fall behind", "give way to"]
COMPARISON_ENDINGS = ["", " for me", " any day", " hands down", " without a doubt"]


@cache
def compared_wordings() -> tuple[str, ...]:
    """Every note template made of one comparison, in a fixed order: 680 of them, half naming the
    liked animal first."""
    clauses = [f"{choose} {{x}} {comparator} {{y}}" for choose in CHOOSE for comparator in COMPARATORS]
    clauses += [f"{lead} {{y}}, {choose} {{x}}" for lead in LEADS for choose in CHOOSE]
    clauses += [f"{{x}} {beat} {{y}}" for beat in BEAT] + [f"{{y}} {lose} {{x}}" for lose in LOSE_TO]
    return tuple(f"{sentence_start(clause)}{ending}." for clause in clauses for ending in COMPARISON_ENDINGS)
