"""What each method puts in front of the scored response: the heart of what makes it a method."""

from __future__ import annotations

from plusrl.data.prompts import context_text, icl_conditioning, summary_conditioning
from plusrl.data.readers import DataError
from plusrl.data.schema import Record

# method → what conditions the reward model
CONDITIONING = {
    "btl": "none",
    "dpl": "none",
    "vpl": "none",  # conditions on a latent from the context pairs, not on text
    "oracle": "oracle",
    "icl": "context",
    "plus-untrained": "summary",
    "plus": "summary",
    "plus-static-rm": "summary",
}


def build_conditionings(
    method: str, records: list[Record], dataset: str, summaries: list[str] | None = None
) -> list[str] | None:
    """Conditioning text per record, or None for methods that score responses alone."""
    if method not in CONDITIONING:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(CONDITIONING)}")
    kind = CONDITIONING[method]
    if kind == "none":
        return None
    if kind == "oracle":
        missing = [r.user_id for r in records if r.oracle is None]
        if missing:
            raise DataError(f"method 'oracle' needs an oracle text per record; {len(missing)} lack one (first: {missing[0]})")
        return [r.oracle for r in records]
    empty = [r.user_id for r in records if not r.context]
    if empty:
        raise DataError(
            f"method {method!r} reads each user's context, but {len(empty)} record(s) have an empty context "
            f"(first: user {empty[0]})"
        )
    if kind == "context":
        return [icl_conditioning(context_text(r, dataset), dataset) for r in records]
    if summaries is None or len(summaries) != len(records):
        raise ValueError(f"method {method!r} needs one summary per record")
    return [summary_conditioning(s) for s in summaries]
