"""Pets and Pets-OOD, built deterministically from the fact lists in `pets_facts/`.

Following VPL (Poddar et al.) as used by PLUS (App. H):
- Four animals with 100 one-sentence facts each; facts 0-79 feed the train split and 80-99
  the test splits, so test responses are unseen sentences.
- Two user types share a ranking birds > {dogs, cats} > rabbits and disagree on one pair:
  "dogs" users prefer dogs over cats, "cats" users the reverse.
- Every record carries 3 past dog-vs-cat pairs of the same user as context, so the user's
  type can be read from the context and from nothing else.
- Train: half the pairs are controversial (dogs vs cats), half are pairs every user agrees
  on. Test: controversial pairs only, which is where the paper measures accuracy and why a
  single reward model (BTL) sits near 50 %.
- Pets-OOD (test only): users prefer rabbits or birds; contexts and pairs are rabbits vs
  birds, topics never seen as controversial in training.

Data to choose designs on without looking at Pets-OOD:
- pets-val: users of four animals never seen in training (hamsters vs horses, turtles vs
  goldfish), fact sentences of our own (`pets_facts/validation/`).
- pets-val-prior: users who prefer dogs or cats over birds, against the prior every training
  user shares (birds first), from the training facts; no rabbits, no test facts.
- pets-val-agreed: its mirror, where the prior is right: dogs and cats users as in training
  (contexts dogs vs cats), scored on birds against their own animal (birds win, as for every
  training user); training facts, no rabbits. A reward model that lets the conditioning text
  overrule the prior must be weighed on both.
- pets-val-overturn: pets-val's users (animals never trained on) scored on their liked animal
  against birds, the animal every training user ranks first: the user's text must overturn the
  learned prior for an animal training never disputed, as Pets-OOD's rabbit users need, with none
  of Pets-OOD's animals as the liked one. A diagnosis, not a calibration set: it is harder than
  Pets-OOD and does not order runs as Pets-OOD does (docs/experiments.md).
- pets-val-ood: Pets-OOD's structure on animals of pets-val: users who prefer hamsters or
  turtles over birds, or birds over them; contexts and scored pair between the two, so half the
  users must overturn the top-ranked animal with their text naming it (training facts for birds,
  validation facts for the others, no rabbits). Harder than Pets-OOD: hamsters and turtles
  were never trained on at all, and the shipped Pets recipe scores 25.5-50.0 on it over five seeds
  that score 99-100 on Pets-OOD (docs/experiments.md); a check for designs aimed at Pets-OOD.
- proxy-pets / proxy-pets-ood: Pets and Pets-OOD rebuilt on those four new animals, to choose
  a design on the structure of the Pets → Pets-OOD transfer without looking at Pets-OOD.

A person's own words, as a context item the summarizer learns to read:
- pets-notes (train): Pets' training users, a third of them with a note about themselves beside
  their pairs ("Honestly cats bore me, but dogs are wonderful.") and a third with the note alone,
  in wordings of `pets_facts/notes/train.txt` (both orders, negations, contrasts, lists, typos).
  Its test split is Pets'.
- pets-notes-polarity (train): pets-notes with half its notes worded by a grammar of polarity
  (plusrl.data.note_grammar: "{Y} bother me; {x} never do."), where "never" stands beside the
  liked animal as often as beside the other.
- pets-notes-composed (train): pets-notes-polarity with half of its hand-written notes (a quarter
  of all) composed instead from one training clause about each animal, either order
  (plusrl.data.note_grammar: "I keep away from {y}, but {x} get my vote.").
- pets-notes-four-sources (train): pets-notes with a quarter of its notes from each of the
  polarity, composition and comparison grammars ("Instead of {y}, I go for {x}.") and a quarter
  hand-written.
- pets-notes-many-animals (train): pets-notes-composed with half of its notes about two of
  NOTE_ANIMALS instead of dogs and cats, each such user the note alone and a pair of facts about
  those two animals (`pets_facts/note_animals/`).
- pets-notes-unnamed-third (train): pets-notes-many-animals whose users with a note about two of
  NOTE_ANIMALS score, in two cases of three, a fact about a third animal the note never names.
- pets-notes-comparisons (train): pets-notes-unnamed-third with half of its hand-written notes (an eighth
  of all) worded as a comparison instead ("Instead of {y}, I go for {x}.", "I side with {x} over {y}.").
- pets-notes-more-animals (train): pets-notes-unnamed-third with three in four of its notes about two
  of MORE_NOTE_ANIMALS (twice as many animals) instead of one in two.
- pets-notes-val (validation): users of the four validation animals with a note alone, in the
  held-out wordings of `pets_facts/notes/validation.txt`. The eval's edit-following statements
  (plusrl.eval.readability) are the test and appear in neither file.
- restatements "pets-notes" (the summarizer's reading warm-up, `restatements`): notes in the
  training wordings about two of READING_ANIMALS, each with the summary that restates it
  ("The user prefers dogs."); the validation split is pets-notes-val's notes.
"""

from __future__ import annotations

import random
from importlib import resources
from pathlib import Path
from typing import NamedTuple

from plusrl.data.note_grammar import composed_wordings, compared_wordings, polarity_wordings
from plusrl.data.readers import DataError, read_records
from plusrl.data.schema import Note, PreferencePair, Record, UserContext

PROMPT = "Please talk about one kind of pets."
ANIMALS = ("birds", "dogs", "cats", "rabbits")
N_TRAIN_FACTS = 80
SIZES = {("pets", "train"): 1970, ("pets", "test"): 194, ("pets-ood", "test"): 200}
# The proxy twins of Pets / Pets-OOD: the same construction on four animals of our own
# (hamsters rank first for everyone, horses vs turtles is disputed, goldfish rank last; proxy
# Pets-OOD users prefer goldfish or hamsters). Designs are chosen on proxy-pets-ood, never on Pets-OOD.
PROXY_ANIMALS = ("hamsters", "horses", "turtles", "goldfish")
PROXY_TRAIN_FACTS = 14
VALIDATION_SIZE = 200
# validation set → the (liked, disliked) pairs of its user types
VALIDATION_USERS = {
    "pets-val": [("hamsters", "horses"), ("horses", "hamsters"), ("turtles", "goldfish"), ("goldfish", "turtles")],
    "pets-val-prior": [("dogs", "birds"), ("cats", "birds")],
    "pets-val-agreed": [("dogs", "cats"), ("cats", "dogs")],
    "pets-notes-val": [("hamsters", "horses"), ("horses", "hamsters"), ("turtles", "goldfish"), ("goldfish", "turtles")],
}
VALIDATION_USERS["pets-val-overturn"] = VALIDATION_USERS["pets-val"]
VALIDATION_USERS["pets-val-ood"] = [("hamsters", "birds"), ("birds", "hamsters"), ("turtles", "birds"), ("birds", "turtles")]
# validation set → its scored pair (chosen animal, rejected animal), "liked" standing for the user's
# liked animal (absent: liked vs disliked, as in the context)
VALIDATION_SCORED_PAIR = {"pets-val-agreed": ("birds", "liked"), "pets-val-overturn": ("liked", "birds")}
CONTEXT_PAIRS = 3
NOTE_SHARES = (1 / 3, 1 / 3)
"""pets-notes: the shares of training users with a note beside their pairs, and with the note alone."""


# Animals people's notes are about besides dogs and cats, with facts of their own (`pets_facts/note_animals/`),
# none of them Pets-OOD's or the validation and edit-check sets': with notes about dogs and cats alone, a reader
# can tie what a wording means to those two names; about many animals, only the words say which one is liked.
NOTE_ANIMALS = ("ferrets", "guinea pigs", "lizards", "snakes", "frogs", "hedgehogs", "mice", "goats", "pigs",
                "sheep", "foxes", "otters")
# Twelve more, none a bird and none a near kin of a held-out animal (no ponies, tortoises or gerbils), for
# pets-notes-more-animals: notes about these 24 read people's words worse than about NOTE_ANIMALS alone
# (docs/experiments.md).
MORE_NOTE_ANIMALS = (*NOTE_ANIMALS, "cows", "llamas", "deer", "squirrels", "bats", "wolves", "bears", "monkeys",
                     "elephants", "dolphins", "bees", "crabs")


class NoteMix(NamedTuple):
    """How a notes dataset words its notes and whom they are about (`build_notes_train`)."""

    polarity: float = 0.0
    """Share of the notes worded by the polarity grammar (plusrl.data.note_grammar)."""
    composed: float = 0.0
    """Of the other notes, the share composed from clauses."""
    compared: float = 0.0
    """Of the rest, the share worded as a comparison; the rest are hand-written."""
    other_animals: float = 0.0
    """Share of the users who wrote a note whose note is about two other animals (`animals`) instead of dogs and cats."""
    unnamed_third: bool = False
    """Those users score, in two cases of three, a fact about a third animal their note never names: above the
    animal it dislikes, below the one it likes."""
    animals: tuple[str, ...] = NOTE_ANIMALS
    """The animals those notes are about."""


NOTE_MIXES = {"pets-notes": NoteMix(), "pets-notes-polarity": NoteMix(0.5), "pets-notes-composed": NoteMix(0.5, 0.5),
              "pets-notes-four-sources": NoteMix(0.25, 1 / 3, 0.5),
              "pets-notes-many-animals": NoteMix(0.5, 0.5, other_animals=0.5),
              "pets-notes-unnamed-third": NoteMix(0.5, 0.5, other_animals=0.5, unnamed_third=True),
              "pets-notes-comparisons": NoteMix(0.5, 0.5, 0.5, other_animals=0.5, unnamed_third=True),
              "pets-notes-more-animals": NoteMix(0.5, 0.5, other_animals=0.75, unnamed_third=True,
                                                 animals=MORE_NOTE_ANIMALS)}
"""Each built notes dataset → its mix."""

def load_facts() -> dict[str, list[str]]:
    folder = resources.files("plusrl.data") / "pets_facts"
    return {a: folder.joinpath(f"{a}.txt").read_text(encoding="utf-8").splitlines() for a in ANIMALS}


def load_note_animal_facts() -> dict[str, list[str]]:
    folder = resources.files("plusrl.data") / "pets_facts" / "note_animals"
    return {a: folder.joinpath(f"{a.replace(' ', '-')}.txt").read_text(encoding="utf-8").splitlines()
            for a in MORE_NOTE_ANIMALS}


def load_validation_facts() -> dict[str, list[str]]:
    folder = resources.files("plusrl.data") / "pets_facts" / "validation"
    train = {a: fs[:N_TRAIN_FACTS] for a, fs in load_facts().items()}
    own = {p.name.removesuffix(".txt"): p.read_text(encoding="utf-8").splitlines() for p in folder.iterdir()
           if p.name.endswith(".txt")}
    return train | own


def load_note_wordings(split: str) -> list[str]:
    """Templates of a person's note about themselves ({x} liked, {y} not; {X}, {Y} capitalised)."""
    folder = resources.files("plusrl.data") / "pets_facts" / "notes"
    return [line for line in folder.joinpath(f"{split}.txt").read_text(encoding="utf-8").splitlines() if line.strip()]


def note_text(template: str, liked: str, other: str) -> str:
    return template.format(x=liked, y=other, X=liked.capitalize(), Y=other.capitalize())


# The reading warm-up's notes are about these animals: Pets' training animals and others that no
# test, validation or edit-check set uses, so the summarizer learns to read a note's wording, not
# which of two animals is the usual answer.
READING_ANIMALS = ("dogs", "cats", "lions", "tigers", "wolves", "foxes", "bears", "owls", "parrots", "sharks",
                   "dolphins", "snakes", "lizards", "frogs", "bees", "pigs", "cows", "sheep", "goats", "ducks",
                   "mice", "ferrets", "deer", "elephants", "giraffes", "zebras", "monkeys", "penguins",
                   # names of several tokens, so that the reader learns to copy a name whole ("goldfish", not "fish")
                   "jellyfish", "starfish", "swordfish", "catfish", "hedgehogs", "squirrels", "chipmunks", "raccoons",
                   "otters", "beavers", "hippos", "rhinos", "camels", "llamas", "alpacas", "gorillas", "koalas",
                   "pandas", "butterflies", "ladybugs", "dragonflies", "crocodiles", "alligators", "octopuses",
                   "chickens", "peacocks", "flamingos", "guinea pigs", "polar bears", "sea lions")
READING_EXAMPLES = 2000


def stated_summary(liked: str) -> str:
    """The summary the "stated" instruction asks for (plusrl.data.prompts)."""
    return f"The user prefers {liked}."


def restatements(split: str) -> list[tuple[UserContext, str]]:
    """(a person's note, the summary restating it): train, notes in the training wordings about two
    of READING_ANIMALS; validation, pets-notes-val's notes (held-out wordings and animals)."""
    if split == "validation":
        return [(UserContext(context=r.context), stated_summary(r.meta["user_type"]))
                for r in build_validation("pets-notes-val")]
    wordings, rng = load_note_wordings("train"), random.Random("pets-notes/restatements")
    examples = []
    for _ in range(READING_EXAMPLES):
        liked, other = rng.sample(READING_ANIMALS, 2)
        examples.append((UserContext(context=[Note(text=note_text(rng.choice(wordings), liked, other))]),
                         stated_summary(liked)))
    return examples


def build_notes_train(mix: NoteMix = NoteMix()) -> list[Record]:
    """A notes dataset's train split: Pets' training users, some with a note beside their pairs, some
    with the note alone (NOTE_SHARES), deterministic, worded as `mix` says. Users whose note is about two
    of the mix's animals have the note alone, in the wording drawn for them, and a pair of facts about those two
    animals; with `mix.unnamed_third`, being named as disliked then scores below not being named."""
    wordings = load_note_wordings("train")
    rng = random.Random("pets-notes/train")
    # its own draws, so that the notes about dogs and cats are those of the dataset without it
    animals_rng = random.Random("pets-notes/note-animals")
    animal_facts = load_note_animal_facts() if mix.other_animals else {}
    records = []
    for record in read_records(shipped_path("pets", "train")):
        liked = record.meta["user_type"]
        other = next(a for a in ("dogs", "cats") if a != liked)
        template = rng.choice(wordings)  # drawn either way, so that pets-notes keeps its notes
        # each share draws only where it is set, so that pets-notes-polarity keeps its notes too
        if mix.polarity and rng.random() < mix.polarity:
            template = rng.choice(polarity_wordings())
        elif mix.composed and rng.random() < mix.composed:
            template = rng.choice(composed_wordings())
        elif mix.compared and rng.random() < mix.compared:
            template = rng.choice(compared_wordings())
        note = Note(text=note_text(template, liked, other))
        draw = rng.random()
        context = ([*record.context, note] if draw < NOTE_SHARES[0] else
                   [note] if draw < sum(NOTE_SHARES) else record.context)
        if draw < sum(NOTE_SHARES) and mix.other_animals and animals_rng.random() < mix.other_animals:
            liked, other = animals_rng.sample(mix.animals, 2)
            chosen, rejected = liked, other
            if mix.unnamed_third:  # its own draws, so that the notes are those of pets-notes-many-animals
                third_rng = random.Random(f"pets-notes/unnamed-third/{record.user_id}")
                third = third_rng.choice([a for a in mix.animals if a not in (liked, other)])
                chosen, rejected = third_rng.choice([(liked, other), (third, other), (liked, third)])
            records.append(record.model_copy(update={
                "context": [Note(text=note_text(template, liked, other))],
                "chosen": animals_rng.choice(animal_facts[chosen]), "rejected": animals_rng.choice(animal_facts[rejected]),
                "oracle": f"This user prefers {liked} over {other}.",
                "meta": {"user_type": liked, "disliked": other, "controversial": True, "note": True}}))
            continue
        records.append(record.model_copy(update={"context": context, "meta": {**record.meta,
                                                                              "note": draw < sum(NOTE_SHARES)}}))
    return records


def build_validation(dataset: str) -> list[Record]:
    """A validation set of VALIDATION_USERS: every context pair is liked vs disliked; so is the
    scored pair, unless the set names another (VALIDATION_SCORED_PAIR)."""
    facts = load_validation_facts()
    notes = load_note_wordings("validation") if dataset == "pets-notes-val" else None
    rng = random.Random(f"{dataset}/validation")
    records = []
    for i in range(VALIDATION_SIZE):
        liked, disliked = VALIDATION_USERS[dataset][i % len(VALIDATION_USERS[dataset])]
        pairs = [(rng.choice(facts[liked]), rng.choice(facts[disliked])) for _ in range(CONTEXT_PAIRS)]
        context = [Note(text=note_text(notes[i % len(notes)], liked, disliked))] if notes else \
            [PreferencePair(prompt=PROMPT, chosen=c, rejected=r) for c, r in pairs[:-1]]
        chosen, rejected = (liked if a == "liked" else a for a in VALIDATION_SCORED_PAIR.get(dataset, (liked, disliked)))
        pairs.append((rng.choice(facts[chosen]), rng.choice(facts[rejected])))
        records.append(
            Record(
                user_id=f"{dataset}-validation-{i:05d}",
                context=context,
                prompt=PROMPT,
                chosen=pairs[-1][0],
                rejected=pairs[-1][1],
                oracle=f"This user prefers {liked} over {disliked}.",
                meta={"user_type": liked, "disliked": disliked, "controversial": dataset not in VALIDATION_SCORED_PAIR},
            )
        )
    return records


def _ranking(user_type: str, ood: bool, animals: tuple[str, ...] = ANIMALS) -> list[str]:
    """Animals from most to least preferred for a user type (animals: top, the two disputed, bottom)."""
    top, first, second, bottom = animals
    if ood:
        other = top if user_type == bottom else bottom
        return [user_type, other]
    other = second if user_type == first else first
    return [top, user_type, other, bottom]


def _pair(rng: random.Random, facts: dict[str, list[str]], a: str, b: str, ranking: list[str]) -> tuple[str, str]:
    """Sample one fact about each animal; return (chosen, rejected) under `ranking`."""
    fa, fb = rng.choice(facts[a]), rng.choice(facts[b])
    return (fa, fb) if ranking.index(a) < ranking.index(b) else (fb, fa)


def build_split(dataset: str, split: str, seed: int = 0) -> list[Record]:
    """Build one split of 'pets' (train/test) or 'pets-ood' (test), or of their proxy twins."""
    base = dataset.removeprefix("proxy-")  # a proxy twin is built exactly as its Pets original
    if (base, split) not in SIZES:
        raise DataError(f"no split {split!r} for {dataset!r}; have {sorted(SIZES)}")
    proxy = base != dataset
    ood = base == "pets-ood"
    animals, all_facts, n_train = (PROXY_ANIMALS, load_validation_facts(), PROXY_TRAIN_FACTS) if proxy \
        else (ANIMALS, load_facts(), N_TRAIN_FACTS)
    sl = slice(0, n_train) if split == "train" else slice(n_train, None)
    facts = {a: all_facts[a][sl] for a in animals}
    top, first, second, bottom = animals
    controversial = (bottom, top) if ood else (first, second)
    user_types = controversial
    agreed_pairs = [(a, b) for i, a in enumerate(animals) for b in animals[i + 1 :] if {a, b} != {first, second}]
    rng = random.Random(f"{base}/{split}/{seed}")

    records = []
    for i in range(SIZES[(base, split)]):
        user_type = user_types[i % 2]
        ranking = _ranking(user_type, ood, animals)
        context = []
        for _ in range(CONTEXT_PAIRS):
            chosen, rejected = _pair(rng, facts, *controversial, ranking)
            context.append(PreferencePair(prompt=PROMPT, chosen=chosen, rejected=rejected))
        is_controversial = split != "train" or rng.random() < 0.5
        a, b = controversial if is_controversial else rng.choice(agreed_pairs)
        chosen, rejected = _pair(rng, facts, a, b, ranking)
        disliked = next(t for t in user_types if t != user_type)
        records.append(
            Record(
                user_id=f"{dataset}-{split}-{i:05d}",
                context=context,
                prompt=PROMPT,
                chosen=chosen,
                rejected=rejected,
                oracle=f"This user prefers {user_type} over {disliked}.",
                meta={"user_type": user_type, "controversial": is_controversial},
            )
        )
    rng.shuffle(records)
    return records


def shipped_path(dataset: str, split: str) -> Path:
    return Path(str(resources.files("plusrl.data") / "builtin" / dataset / f"{split}.jsonl"))
