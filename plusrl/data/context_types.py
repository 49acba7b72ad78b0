"""The three kinds of user context of Table 4, made from any dataset's preference pairs.

- pairs: past (prompt, chosen, rejected) examples, as built;
- guideline: a note naming what users care about, then the pairs;
- conversation: only the chosen responses, as plain past conversations with no labels.
"""

from __future__ import annotations

from plusrl.data.readers import DataError
from plusrl.data.schema import Conversation, Message, Note, PreferencePair, Record

GUIDELINE = ("Users typically care about the LLM assistant's helpfulness, honesty, truthfulness, and "
             "instruction-following capabilities.")
CONTEXT_TYPES = ("pairs", "guideline", "conversation")


def with_context_type(records: list[Record], context_type: str) -> list[Record]:
    if context_type not in CONTEXT_TYPES:
        raise DataError(f"unknown context type {context_type!r}; choose from {', '.join(CONTEXT_TYPES)}")
    if context_type == "pairs":
        return records
    out = []
    for record in records:
        if context_type == "guideline":
            context = [Note(text=GUIDELINE), *record.context]
        else:
            context = [Conversation(messages=[Message(role="user", content=item.prompt),
                                              Message(role="assistant", content=item.chosen)])
                       if isinstance(item, PreferencePair) else item for item in record.context]
        out.append(record.model_copy(update={"context": context}))
    return out
