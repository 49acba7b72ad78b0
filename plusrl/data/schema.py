"""One record schema for every dataset.

A record is one preference judgement of one user: the user's context (what we know about
them), a prompt, the response they chose and the one they rejected, and optionally an
oracle description of their true preference (used only by the Oracle baseline and for
evaluation of generated responses).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

NonEmptyStr = Annotated[str, StringConstraints(strip_whitespace=False, min_length=1, pattern=r"\S")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PreferencePair(_Strict):
    """A past comparison: the user saw two responses to a prompt and chose one."""

    kind: Literal["pair"] = "pair"
    prompt: NonEmptyStr
    chosen: NonEmptyStr
    rejected: NonEmptyStr


class Message(_Strict):
    role: Literal["system", "user", "assistant"]
    content: NonEmptyStr


class Conversation(_Strict):
    """A past conversation with no preference label (e.g. only the chosen responses)."""

    kind: Literal["conversation"] = "conversation"
    messages: Annotated[list[Message], Field(min_length=1)]


class Note(_Strict):
    """Free text about the user, e.g. a guideline ("Users typically care about ...")."""

    kind: Literal["text"] = "text"
    text: NonEmptyStr


ContextItem = Annotated[PreferencePair | Conversation | Note, Field(discriminator="kind")]


class Record(_Strict):
    user_id: NonEmptyStr
    context: list[ContextItem] = Field(default_factory=list)
    prompt: NonEmptyStr
    chosen: NonEmptyStr
    rejected: NonEmptyStr
    oracle: NonEmptyStr | None = None
    """Text describing the user's true preference ("This user prefers cats over dogs.")."""
    meta: dict[str, str | int | float | bool] = Field(default_factory=dict)
    """Dataset-specific tags (user type, whether the pair is controversial, ...)."""
    reward_model_pair: PreferencePair | None = None
    """The pair PLUS's reward model trains on when it is not the pair whose reward trains the
    summarizer (the PLUS authors' `train_*` fields beside `reward_prompt`/`chosen`/`rejected`)."""
    held_out_pair: PreferencePair | None = None
    """Another pair of this user kept for evaluation only (the PLUS authors' `eval_*` fields)."""

    def for_reward_model(self) -> Record:
        """This record with the pair the reward model trains on in its prompt/chosen/rejected."""
        pair = self.reward_model_pair
        return self if pair is None else self.model_copy(
            update={"prompt": pair.prompt, "chosen": pair.chosen, "rejected": pair.rejected})


class UserContext(_Strict):
    """One user's context alone, for summarizing outside a dataset (`plusrl summarize`)."""

    user_id: NonEmptyStr = "user"
    context: Annotated[list[ContextItem], Field(min_length=1)]
