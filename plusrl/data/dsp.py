"""DSP (Cheng et al. 2023, "Everyone Deserves A Reward"): real text, four user types.

Input: `domain_specific_preference.*.json` as its repository (Linear95/DSP) serves it, a list of
`{"query": ..., "responses": {"academy", "business", "entertainment", "literature", "normal"}}`:
each Alpaca instruction answered by ChatGPT in the voice of four domains, plus Alpaca's own
answer. A user of domain D prefers D's answer over every other answer of the same query (the
DSP authors' rule); nothing else is labelled.

- Split by query (seeded): test and validation queries, and all their answers, are unseen in
  training; a record's context comes from other queries of its own split.
- Each record is one (pair, user of domain D): the target pair holds D's answer (chosen) and
  another answer (rejected). Test and validation pairs are controversial (D against another
  domain, whose user would choose the other way); train pairs mix those with D against `normal`.
- Context: k past pairs of the same domain from other queries, D's answer against another
  domain's, so the context shows the style the user picks.
- Oracle text per domain, in the spirit of PLUS App. I.2 ("I prefer ... Now based on this
  information about myself, here's a new question:").
- Notes (`build(notes=True)`, `plusrl data build-dsp --notes`): each training user's context also
  opens with a note about themselves in their own words, one of `NOTES[domain]`, so that a reward
  model trained on them (`written_notes`) learns what a description of a style is worth.
  Validation and test users keep their pairs alone.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from plusrl.data.readers import DataError
from plusrl.data.schema import Note, PreferencePair, Record, UserContext

DOMAINS = ("academy", "business", "entertainment", "literature")
REFERENCE = "normal"  # Alpaca's own answer: no domain's voice
ORACLE = {
    "academy": "I prefer answers written like an academic: formal, precise and analytical, grounded in evidence "
               "and research, with scholarly terminology.",
    "business": "I prefer answers written like a business professional: practical, strategic and results-oriented, "
                "focused on costs, markets and actionable steps.",
    "entertainment": "I prefer answers written like an entertainer: casual, playful and enthusiastic, full of humour "
                     "and fun, speaking to me like a friend.",
    "literature": "I prefer answers written like a writer of literature: poetic and imaginative, rich in imagery, "
                  "metaphor and storytelling.",
}
# A person's own description of the style they like, several wordings each: direct and negated
# ("Casual chatter annoys me"), by role ("I run a company"), by example ("like a talk-show host").
NOTES = {
    "academy": ("I'm a researcher: I want answers that read like a paper, precise, formal and backed by evidence.",
                "Please be scholarly with me. Cite the research, define your terms, keep the tone formal.",
                "Casual chatter annoys me; give me rigorous, analytical explanations like a professor would.",
                "I like academic writing: careful analysis and technical vocabulary, not jokes or poetry.",
                "answer as an academic would - structured, evidence-based, with precise terminology"),
    "business": ("I run a company, so give me the practical bottom line: costs, markets, next steps.",
                 "Keep it businesslike: strategy, returns and actionable advice, no flowery language.",
                 "I want answers like a consultant's brief, concise and results-oriented, focused on what to do.",
                 "Talk to me like a manager would: efficiency, profit and clear action items.",
                 "no stories or jokes please; I care about the commercial angle and what it means for a business"),
    "entertainment": ("Make me laugh! I like answers that are fun, casual and full of jokes.",
                      "Talk to me like a friend would: relaxed, playful, enthusiastic.",
                      "Dry, formal answers bore me; I want humour and a bit of showbiz energy.",
                      "I enjoy a chatty, entertaining tone with pop-culture references.",
                      "keep it light and lively, like a talk-show host"),
    "literature": ("I love answers that read like a story, full of imagery and metaphor.",
                   "Write to me poetically; vivid, imaginative language moves me.",
                   "Plain facts feel flat to me: give me lyrical prose and storytelling.",
                   "I prefer the voice of a novelist, descriptive and emotional, rich in imagery.",
                   "answer like a poet would, with metaphors and beautiful phrasing"),
}
ORACLE_TAIL = " Now based on this information about myself, here's a new question:"
# How a summary names each domain's style: the reading warm-up's targets (`restatements`), after the
# summary start the DSP runs give the summarizer, so that the words RL starts from name a style.
SUMMARY_START = "The user prefers answers written in the style of"
STYLES = {
    "academy": "an academic: formal, precise and evidence-based",
    "business": "a business professional: practical and results-oriented",
    "entertainment": "an entertainer: casual, playful and funny",
    "literature": "a writer of literature: poetic, imaginative and rich in imagery",
}
SPLIT_FRACTIONS = {"test": 0.2, "validation": 0.1}  # of the queries; the rest is train


def read_items(path: str | Path) -> list[tuple[str, dict[str, str]]]:
    """(query, {answerer: response}) of every item of a DSP file, checked field by field."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: not found. Pass domain_specific_preference.test.json (or .train.json) from "
                        f"the DSP repository (Linear95/DSP, data/) with --source")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(f"{path}:{err.lineno}: invalid JSON ({err.msg})") from None
    if not isinstance(data, list) or not data:
        raise DataError(f"{path}: expected a non-empty list of {{'query', 'responses'}} items")
    items = []
    for i, item in enumerate(data):
        where = f"{path}[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("query"), str) or not item["query"].strip():
            raise DataError(f"{where}: expected an object with a non-empty 'query' text")
        responses = item.get("responses")
        if not isinstance(responses, dict):
            raise DataError(f"{where}: field 'responses' must be an object keyed by "
                            f"{', '.join((*DOMAINS, REFERENCE))}")
        for key in (*DOMAINS, REFERENCE):
            if key not in responses:
                raise DataError(f"{where}: field 'responses.{key}' is missing")
            if not isinstance(responses[key], str):
                raise DataError(f"{where}: field 'responses.{key}' must be text, got {type(responses[key]).__name__}")
        items.append((item["query"], {k: v for k, v in responses.items() if k in (*DOMAINS, REFERENCE)}))
    return items


def _rivals(responses: dict[str, str], domain: str, with_reference: bool) -> list[str]:
    """The answerers whose answer a user of `domain` rejects in a labelled pair; empty answers drop out."""
    rivals = [d for d in DOMAINS if d != domain] + ([REFERENCE] if with_reference else [])
    return [r for r in rivals if responses[domain].strip() and responses[r].strip()]


def build(items: list[tuple[str, dict[str, str]]], seed: int = 0, k_context: int = 3,
          notes: bool = False) -> dict[str, list[Record]]:
    """{'train', 'validation', 'test'} records, split by query; with `notes`, each training user's
    context opens with a note from NOTES (the records are otherwise the same as without)."""
    if k_context < 1:
        raise DataError(f"k_context must be at least 1, got {k_context}")
    rng = random.Random(seed)
    order = list(range(len(items)))
    rng.shuffle(order)
    n_test, n_val = (round(len(items) * SPLIT_FRACTIONS[s]) for s in ("test", "validation"))
    if min(n_test, n_val, len(items) - n_test - n_val) <= k_context:
        raise DataError(f"{len(items)} queries are too few to split into train/validation/test with {k_context} "
                        f"context pairs from other queries each")
    query_splits = {"test": order[:n_test], "validation": order[n_test:n_test + n_val],
                    "train": order[n_test + n_val:]}
    out = {}
    for split, queries in query_splits.items():
        records = []
        for q in queries:
            query, responses = items[q]
            for domain in DOMAINS:
                others = [o for o in queries if o != q and items[o][1][domain].strip()]
                for rival in _rivals(responses, domain, with_reference=split == "train"):
                    context = []
                    for o in rng.sample(others, k_context):
                        past_query, past = items[o]
                        past_rival = rng.choice([d for d in DOMAINS if d != domain and past[d].strip()])
                        context.append(PreferencePair(prompt=past_query, chosen=past[domain], rejected=past[past_rival]))
                    records.append(Record(
                        user_id=f"dsp-{split}-{q:04d}-{domain}-{rival}", context=context, prompt=query,
                        chosen=responses[domain], rejected=responses[rival], oracle=ORACLE[domain] + ORACLE_TAIL,
                        meta={"user_type": domain, "rejected_type": rival, "controversial": rival != REFERENCE,
                              "query_index": q}))
        rng.shuffle(records)
        out[split] = records
    if notes:
        # a generator of its own, so the split and the contexts are those of the same seed without notes
        note_rng = random.Random(f"dsp-notes/{seed}")
        out["train"] = [record.model_copy(update={"context": [Note(text=note_rng.choice(NOTES[record.meta["user_type"]])),
                                                              *record.context]})
                        for record in out["train"]]
    return out


def restatements(split: str) -> list[tuple[UserContext, str]]:
    """(a user's note alone, the summary naming its style) for the reading warm-up
    (`reading_warmup.restatements=dsp-notes`, with `summarizer.summary_start` = SUMMARY_START):
    train, the first four wordings of each domain's NOTES; validation, the fifth, held out."""
    wordings = slice(0, -1) if split == "train" else slice(-1, None)
    return [(UserContext(context=[Note(text=note)]), f"{SUMMARY_START} {STYLES[domain]}.")
            for domain in DOMAINS for note in NOTES[domain][wordings]]
