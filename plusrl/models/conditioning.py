"""What each method puts in front of the scored response: the text for its registry entry's `conditioning`."""

from __future__ import annotations

from plusrl.data.prompts import SUMMARY_CONDITIONING, context_text, icl_conditioning, summary_conditioning
from plusrl.data.readers import DataError
from plusrl.data.schema import Record
from plusrl.methods import method_spec

def build_conditionings(
    method: str, records: list[Record], prompts: str, summaries: list[str] | None = None,
    summary_template: str = SUMMARY_CONDITIONING,
) -> list[str] | None:
    """Conditioning text per record (`prompts`: the data's prompt family, or its dataset name), or
    None for methods that score responses alone (VPL's latent is read from the pairs themselves).
    Summaries stand in the reward model's `summary_template`."""
    kind = method_spec(method).conditioning
    if kind in ("none", "latent"):
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
        return [icl_conditioning(context_text(r, prompts), prompts) for r in records]
    if summaries is None or len(summaries) != len(records):
        raise ValueError(f"method {method!r} needs one summary per record")
    return [summary_conditioning(s, summary_template) for s in summaries]
