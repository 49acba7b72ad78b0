"""Two deterministic checks that summaries mean to people what they mean to the reward model.

- Readability (Pets-like data): does a summary *state* the user's preference in words ("prefers
  cats over dogs") rather than copy a context sentence ("The user chose: Cats nap in ...")?
- Edit-following: when a person writes their preference in their own words, does the reward
  model rank the stated animal first? Statements are hand-written paraphrases, both
  directions, for the training animals, the Pets-OOD animals and animals never seen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from plusrl.data.pets import PROMPT, load_facts, load_validation_facts
from plusrl.data.schema import Record

_LIKE = r"(?:prefers?|preferred|preferring|likes?|liked|loves?|loved|enjoys?|enjoyed|adores?|favou?rs?|favou?rite|" \
        r"fond of|fan of|partial to|drawn to|chose|chooses|picks?)"
_NEGATION = r"(?:not|n't|never|no|dislikes?|hates?|over|than|rather than|instead of)"


_NAMED_FIRST = [r"\b(\w+)[ -](?:person|lover|fan)\b", r"\b(\w+) (?:are|is) (?:my|their|his|her|the user's) favou?rite",
                r"\brather (?:\w+ ){0,3}?(\w+) than\b"]


def _animal_pattern(animal: str) -> str:
    stem = animal[:-1] if animal.endswith("s") else animal
    return rf"\b{re.escape(stem)}s?\b"


def _before_compared(window: str, animals: list[str]) -> str:
    """'prefer X to Y' names Y as the one not preferred: cut at a 'to' after the first animal
    ('dogs to cats' → 'dogs '), but not before it ('to hear about dogs' stays whole)."""
    first = [m.end() for a in animals if (m := re.search(_animal_pattern(a), window))]
    compared = re.search(r"\bto\b", window[min(first):]) if first else None
    return window[: min(first) + compared.start()] if compared else window


def preferred_animals(summary: str, animals: list[str]) -> set[str]:
    """Animals the text names as liked: within a clause after a liking word and not negated
    ('prefers cats over dogs' → {cats}; 'dislikes dogs' → {})."""
    text = summary.lower()
    liked = set()
    for clause in re.split(r"[.;!?\n]|\bbut\b|\bwhile\b|\bwhereas\b", text):
        for match in re.finditer(rf"\b{_LIKE}\b", clause):
            if re.search(rf"\b{_NEGATION}\W+(?:\w+\W+){{0,2}}$", clause[: match.start()]):
                continue  # "does not like", "never liked"
            after = clause[match.end():]
            cut = re.search(rf"\b{_NEGATION}\b", after)
            window = after[: cut.start()] if cut else after
            if match.group(0).startswith("prefer"):
                window = _before_compared(window, animals)
            liked |= {a for a in animals if re.search(_animal_pattern(a), window)}
        for pattern in _NAMED_FIRST:  # "a dog person", "cats are my favourite", "rather dogs than cats"
            for match in re.finditer(pattern, clause):
                liked |= {a for a in animals if re.fullmatch(_animal_pattern(a), match.group(1))}
    return liked


def copies_context(summary: str, record: Record, min_words: int = 4) -> bool:
    """True when the summary contains a whole sentence (of `min_words` or more) of a context response."""
    responses = [r for item in record.context for r in (getattr(item, "chosen", ""), getattr(item, "rejected", "")) if r]
    sentences = {" ".join(s.lower().split()) for r in responses for s in re.split(r"[.!?\n]", r)}
    text = " ".join(summary.lower().split())
    return any(len(s.split()) >= min_words and s in text for s in sentences)


def is_readable(summary: str, record: Record, animals: list[str]) -> bool:
    """States the user's animal as preferred, no other animal as preferred, and copies no context sentence."""
    liked = record.meta["user_type"]
    return preferred_animals(summary, animals) == {liked} and not copies_context(summary, record)


def named_styles(summary: str) -> dict[str, int]:
    """How many words of each DSP domain's style vocabulary the text uses."""
    words = re.findall(r"[a-z][a-z-]*", summary.lower())
    return {domain: sum(bool(re.fullmatch(pattern, w)) for w in words) for domain, pattern in STYLE_WORDS.items()}


def names_style(summary: str, record: Record) -> bool:
    """DSP: the user's domain style is named more than any other, and no context sentence is copied."""
    counts = named_styles(summary)
    own = counts.pop(record.meta["user_type"])
    return own > 0 and own > max(counts.values()) and not copies_context(summary, record)


def readability_rate(summaries: list[str], records: list[Record]) -> float | None:
    """Share of summaries that state the user's preference (an animal on Pets-like data, a style on
    DSP), or None when the records do not say their user's type."""
    if not records or any("user_type" not in r.meta for r in records):
        return None
    if {r.meta["user_type"] for r in records} <= set(STYLE_WORDS):
        readable = [names_style(s, r) for s, r in zip(summaries, records, strict=True)]
    else:
        animals = sorted(set(load_facts()) | set(load_validation_facts()))
        readable = [is_readable(s, r, animals) for s, r in zip(summaries, records, strict=True)]
    return sum(readable) / len(records)


# Written by hand: the words that name each DSP domain's style, as patterns a whole word must match.
STYLE_WORDS = {
    "academy": r"academ\w*|scholar\w*|research\w*|scien\w*|evidence\w*|analytic\w*|formal\w*|rigou?r\w*|"
               r"theor\w*|citations?|professors?|technical\w*|precise\w*",
    "business": r"business\w*|professional\w*|practical\w*|strateg\w*|market\w*|compan\w*|corporat\w*|profit\w*|"
                r"customers?|commerc\w*|econom\w*|entrepreneur\w*|manag\w*|actionable|industr\w*|financ\w*",
    "entertainment": r"entertain\w*|fun|funny|humou?r\w*|playful\w*|casual\w*|enthusias\w*|lively|jokes?|joking|"
                     r"witty|comed\w*|celebrit\w*|exciting|friendly|light-?hearted",
    "literature": r"literar\w*|literature|poet\w*|poem\w*|metaphor\w*|imagery|stor(?:y|ies)|storytelling|narrative\w*|"
                  r"lyric\w*|prose|artistic\w*|figurative|vivid\w*|creativ\w*",
}

# Written by hand: what people say when they state a preference. {x} is liked, {y} is not. The
# last four name the disliked animal first: a reader that takes the first animal named as the
# liked one passes the first eight and fails these.
STATEMENTS = [
    "I love {x} and dislike {y}.",
    "Prefers {x}; not a fan of {y}.",
    "The user prefers {x} over {y}.",
    "{X} are my favourite animals. {Y} bore me.",
    "Big fan of {x}, never really liked {y}.",
    "I'd rather hear about {x} than {y}.",
    "Tell me about {x}, please, not {y}.",
    "I'm a {x} person.",
    "{Y} bore me; {x} never do.",
    "Less {y}, more {x}.",
    "I'm not a {y} person. Give me {x}.",
    "Anything but {y}. I love {x}.",
]
# Other wordings and other animal pairs, for choosing a design (`edit_cases(validation=True)`);
# STATEMENTS and EDIT_GROUPS stay the test.
VALIDATION_STATEMENTS = [
    "Keen on {x}; {y} leave me cold.",
    "No more {y}, please. Only {x}.",
    "I can't stand {y}, but I adore {x}.",
    "{X} over {y}, every time.",
    "Not into {y} at all. {X} are great.",
    "My favourites are {x}; I find {y} dull.",
    "Skip the {y}. Give me {x}.",
    "I would choose {x} rather than {y}.",
]
VALIDATION_EDIT_PAIRS = [("hamsters", "horses"), ("horses", "hamsters"), ("goldfish", "turtles"), ("turtles", "goldfish")]
EDIT_GROUPS = {
    "training animals": [("dogs", "cats"), ("cats", "dogs")],
    "Pets-OOD animals": [("rabbits", "birds"), ("birds", "rabbits")],
    "new animals": [("hamsters", "goldfish"), ("goldfish", "hamsters"), ("horses", "turtles"), ("turtles", "horses")],
}


def word_order(template: str) -> str:
    """"liked first" when a statement template names the liked animal {x} before the other {y} (or
    alone), else "liked second": a reader that takes the first animal named as the liked one fails
    only the second kind."""
    other = re.search(r"\{[yY]\}", template)
    liked_first = other is None or re.search(r"\{[xX]\}", template).start() < other.start()
    return "liked first" if liked_first else "liked second"


def share_by_order(by_statement: dict[str, float]) -> dict[str, float]:
    """Edit-following by word order from its rate per template (every template has as many cases)."""
    rates: dict[str, list[float]] = {}
    for template, rate in by_statement.items():
        rates.setdefault(word_order(template), []).append(rate)
    return {order: sum(values) / len(values) for order, values in sorted(rates.items())}


@dataclass
class EditCase:
    group: str
    template: str
    statement: str
    liked: str
    other: str
    liked_fact: str
    other_fact: str

    @property
    def order(self) -> str:
        return word_order(self.template)

    def restated_right(self, text: str) -> bool:
        """A restatement of the statement names the liked animal and not the other one."""
        def named(animal: str) -> bool:
            return re.search(rf"\b{animal}\b", text, re.IGNORECASE) is not None
        return named(self.liked) and not named(self.other)


def edit_cases(facts_per_pair: int = 4, validation: bool = False, templates: list[str] | None = None,
               pairs: list[tuple[str, str]] | None = None) -> list[EditCase]:
    """Every statement × animal pair × a few held-out fact pairs (never training facts): the test
    wordings on the last facts, or the validation wordings and pairs on the first facts. `templates`
    replaces the split's wordings and `pairs` the validation animal pairs (a probe's own validation set)."""
    pets_facts = load_facts()
    facts = load_validation_facts() | {a: fs[80:] for a, fs in pets_facts.items()}
    groups = {"validation": pairs or VALIDATION_EDIT_PAIRS} if validation else EDIT_GROUPS
    picks = range(facts_per_pair) if validation else [-1 - k for k in range(facts_per_pair)]
    cases = []
    for group, group_pairs in groups.items():
        for x, y in group_pairs:
            for template in templates or (VALIDATION_STATEMENTS if validation else STATEMENTS):
                statement = template.format(x=x, y=y, X=x.capitalize(), Y=y.capitalize())
                for k in picks:
                    cases.append(EditCase(group, template, statement, x, y, facts[x][k], facts[y][k]))
    return cases


def _share_by(correct: list[bool], keys: list[str]) -> dict[str, float]:
    """Share of True per key, keys in order of first appearance: ([T, F, T], [a, a, b]) → {a: 0.5, b: 1.0}."""
    hits: dict[str, list[bool]] = {}
    for ok, key in zip(correct, keys, strict=True):
        hits.setdefault(key, []).append(ok)
    return {key: sum(oks) / len(oks) for key, oks in hits.items()}


@torch.no_grad()
def edit_following(score, cases: list[EditCase] | None = None, restate=None) -> dict:
    """`score(conditionings, prompts, responses)` → rewards. Share of cases ranking the liked fact first.
    With `restate` (statements → texts, e.g. `Summarizer.restate`), the model reads each statement
    as restated, and the result shows how each was restated."""
    cases = cases or edit_cases()
    n = len(cases)
    read_as = {c.statement: c.statement for c in cases}
    if restate is not None:
        read_as = dict(zip(read_as, restate(list(read_as)), strict=True))
    rewards = score([read_as[c.statement] for c in cases] * 2, [PROMPT] * 2 * n,
                    [c.liked_fact for c in cases] + [c.other_fact for c in cases])
    correct = (rewards[:n] > rewards[n:]).tolist()
    result = {"edit_following": sum(correct) / n, "n_cases": n}
    if restate is not None:
        result["restated_as"] = read_as
        case_of = {c.statement: c for c in cases}
        result["restated_right"] = sum(case_of[s].restated_right(t) for s, t in read_as.items()) / len(read_as)
    result |= _share_by(correct, [c.group for c in cases])  # training, Pets-OOD and new animals
    result["by_order"] = _share_by(correct, [c.order for c in cases])
    result["by_group_and_order"] = _share_by(correct, [f"{c.group}, {c.order}" for c in cases])
    result["by_statement"] = _share_by(correct, [c.template for c in cases])  # which wordings it reads
    return result
