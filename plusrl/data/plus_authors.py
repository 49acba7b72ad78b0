"""The PLUS authors' dataset format (nam630/pluralistic_user_summary_public, an OpenRLHF fork).

One JSON object per (user context, pair), every field text:

- `context`: the user's past conversations; `context_messages`: the summarizer's chat input
  built from it, ending with "Start your response with ##Summary";
- `reward_prompt`, `chosen`, `rejected`: the pair whose reward log σ(r(chosen|z) − r(rejected|z))
  trains the summarizer;
- `train_prompt`, `train_chosen`, `train_rejected`: the pair the reward model trains on (the
  authors advise the same prompt as `reward_prompt`, a different one against overfitting);
- `eval_prompt`, `eval_chosen`, `eval_rejected`: a held-out pair ("not necessary", says their
  README, but their loader reads the keys).

Reading maps a record onto plusrl's schema: the context becomes one note, the reward pair the
record's pair, a differing train pair `reward_model_pair` (PLUS trains its reward model on it),
a differing eval pair `held_out_pair`; `context_messages` is kept in `meta` so that writing the
record back gives the authors' input unchanged. Writing fills `context_messages` with plusrl's
own summarizer prompt (App. I.1) and repeats the record's pair where it has no other.
"""

from __future__ import annotations

import hashlib
import json

from pydantic import ValidationError

from plusrl.data.prompts import context_text, summarizer_prompt
from plusrl.data.schema import Conversation, Note, PreferencePair, Record

PAIR_FIELDS = {  # plusrl's name of a pair → the authors' (prompt, chosen, rejected) keys
    "pair": ("reward_prompt", "chosen", "rejected"),
    "reward_model_pair": ("train_prompt", "train_chosen", "train_rejected"),
    "held_out_pair": ("eval_prompt", "eval_chosen", "eval_rejected"),
}
FIELDS = ("context", "context_messages", *(key for keys in PAIR_FIELDS.values() for key in keys))


def is_plus_authors(raw: object) -> bool:
    """A record in the authors' format names the summarizer's input and its reward pair."""
    return isinstance(raw, dict) and "context_messages" in raw and "reward_prompt" in raw


def to_record(raw: dict, where: str) -> Record:
    """One authors' record as a plusrl Record; a missing or non-text field is a DataError naming it."""
    from plusrl.data.readers import DataError, describe_validation_error

    for key in ("context", *PAIR_FIELDS["pair"]):
        if key not in raw:
            raise DataError(f"{where}: PLUS-authors record lacks field '{key}'")
    pairs = {}
    for name, keys in PAIR_FIELDS.items():
        present = [k for k in keys if raw.get(k) is not None]
        if name != "pair" and not present:
            continue
        if len(present) < 3:
            raise DataError(f"{where}: PLUS-authors record has {', '.join(present)} but lacks "
                            f"{', '.join(k for k in keys if k not in present)} (a pair needs all three)")
        for key in keys:
            if not isinstance(raw[key], str):
                raise DataError(f"{where}: field '{key}' must be text, got {type(raw[key]).__name__}")
        pairs[name] = tuple(raw[k] for k in keys)
    context = raw["context"]
    try:
        if isinstance(context, str):
            items = [Note(text=context)]
        elif isinstance(context, list):  # a chat as a list of messages
            items = [Conversation.model_validate({"messages": context})]
        else:
            raise DataError(f"{where}: field 'context' must be text or a list of messages, got {type(context).__name__}")
        prompt, chosen, rejected = pairs.pop("pair")
        extra = {name: PreferencePair(prompt=p, chosen=c, rejected=r) for name, (p, c, r) in pairs.items()
                 if (p, c, r) != (prompt, chosen, rejected)}
        meta = dict(raw.get("meta") or {})
        meta["context_messages"] = json.dumps(raw["context_messages"], ensure_ascii=False)
        user_id = raw.get("user_id") or "plus-authors-" + hashlib.sha1(
            json.dumps(context, sort_keys=True).encode()).hexdigest()[:12]  # one user per distinct context
        return Record(user_id=user_id, context=items, prompt=prompt, chosen=chosen, rejected=rejected,
                      oracle=raw.get("oracle"), meta=meta, **extra)
    except ValidationError as err:
        raise DataError(f"{where}: {describe_validation_error(err)}") from None


def from_record(record: Record, prompt_family: str) -> dict:
    """The authors' record for one plusrl Record (the summarizer's input in `prompt_family`'s words)."""
    meta = dict(record.meta)
    context = context_text(record, prompt_family)  # a single note (as read from the authors' files) is its text
    messages = meta.pop("context_messages", None)
    messages = json.loads(messages) if messages is not None else [
        {"role": "user", "content": summarizer_prompt(context, prompt_family)}]
    out = {"context": context, "context_messages": messages}
    own = PreferencePair(prompt=record.prompt, chosen=record.chosen, rejected=record.rejected)
    for name, keys in PAIR_FIELDS.items():
        pair = own if name == "pair" else getattr(record, name) or own
        out |= dict(zip(keys, (pair.prompt, pair.chosen, pair.rejected)))
    out |= {"user_id": record.user_id, "meta": meta} | ({"oracle": record.oracle} if record.oracle else {})
    return out
