"""Every prompt text the paper uses, in one place (PLUS App. I and J), per dataset family.

Each function turns records into plain text; models decide how to tokenize it.
"""

from __future__ import annotations

from typing import Literal

from plusrl.data.schema import Conversation, Note, PreferencePair, Record

Instruction = Literal["paper", "stated", "contrast"]

SUMMARY_CONDITIONING = (
    "Here is the summary of my preferences based on previous conversations: {summary}. "
    "In the following conversation, keep this in mind to personalize your response."
)

_PETS_SUMMARIZER_TAIL = (
    "Based on the user's past conversation, provide a short summary of the user's preference. "
    "Focus on the user's preference that should guide how the AI assistant responds to this user "
    "in future conversations. Keep the summary concise under 50 words. Start your response with ##Summary"
)
# "stated": ask for the preference itself, in the words a person would use. Not in the paper; the
# paper's instruction left the 135M summarizer copying a context sentence ("The user chose: Dogs
# …"), which a user cannot read as a statement about them nor edit as one.
_PETS_STATED_TAIL = (
    "Based on the user's past conversation, which kind of pet does the user prefer? Answer in one sentence "
    "of the form 'The user prefers X.' Do not repeat the facts. Start your response with ##Summary"
)
# "contrast": the stated preference and what it is preferred over, as the Oracle's text gives it ("This
# user prefers rabbits over birds."). "The user prefers rabbits." leaves the reward model to overturn
# by itself a prior every training user shared (birds first); naming birds as the one not preferred
# puts that in the text.
_PETS_CONTRAST_TAIL = (
    "Based on the user's past conversation, which kind of pet does the user prefer, and over which? Answer in one "
    "sentence of the form 'The user prefers X over Y.' Do not repeat the facts. Start your response with ##Summary"
)
_GENERIC_INTRO = (
    "In order to provide more information about myself, I'm including examples from my previous "
    "conversation history, which include the prompt, the rejected response, and the chosen response. "
    "Use this information to learn about my preferences and reflect that understanding in your future responses."
)
_GENERIC_SUMMARIZER_TAIL = (
    "Based on this information, provide a short summary of the user's preferences to guide how the AI "
    "assistant should respond in future conversations. Reflect on the user's past chosen and rejected "
    "responses, and what the user preferred about the chosen responses. Do not focus on the topics of "
    "specific conversations. Keep your summary concise—under 50 words. Start your response with ##Summary"
)
_GENERIC_STATED_TAIL = (
    "Based on this information, what kind of response does the user prefer? Answer in one sentence of the form "
    "'The user prefers X.' Do not repeat the responses. Start your response with ##Summary"
)
_GENERIC_CONTRAST_TAIL = (
    "Based on this information, what kind of response does the user prefer, and over what kind? Answer in one "
    "sentence of the form 'The user prefers X over Y.' Do not repeat the responses. Start your response with ##Summary"
)
_SUMMARIZER_TAILS = {("pets", "paper"): _PETS_SUMMARIZER_TAIL, ("pets", "stated"): _PETS_STATED_TAIL,
                     ("pets", "contrast"): _PETS_CONTRAST_TAIL, ("generic", "paper"): _GENERIC_SUMMARIZER_TAIL,
                     ("generic", "stated"): _GENERIC_STATED_TAIL, ("generic", "contrast"): _GENERIC_CONTRAST_TAIL}


def family(dataset: str) -> str:
    """Prompt family of a dataset name: 'pets' for Pets/Pets-OOD and their proxy twins, else 'generic'."""
    return "pets" if dataset.removeprefix("proxy-").startswith("pets") else "generic"


def _item_text(item, style: str) -> str:
    if isinstance(item, PreferencePair):
        if style == "pets":
            return (
                f"Here is a request of a user for an AI assistant. {item.prompt} "
                f"The user chose: {item.chosen} The user rejected: {item.rejected}"
            )
        return (
            f"The prompt was: {item.prompt}\nI chose this response: {item.chosen}\n"
            f"I rejected this response: {item.rejected}"
        )
    if isinstance(item, Conversation):
        return "\n".join(f"{m.role.capitalize()}: {m.content}" for m in item.messages)
    if isinstance(item, Note):
        return item.text
    raise TypeError(f"unknown context item {type(item).__name__}")


def clip_responses(item, max_chars: int):
    """A context item whose responses keep only their first `max_chars` characters ("…" marks a cut)."""
    def clip(text: str) -> str:
        return text if len(text) <= max_chars else text[:max_chars].rstrip() + "…"

    if isinstance(item, PreferencePair):
        return item.model_copy(update={"chosen": clip(item.chosen), "rejected": clip(item.rejected)})
    if isinstance(item, Conversation):
        return item.model_copy(update={"messages": [m.model_copy(update={"content": clip(m.content)})
                                                    if m.role == "assistant" else m for m in item.messages]})
    return item


def context_text(record: Record, dataset: str) -> str:
    """The user's context as text, oldest item first."""
    return "\n\n".join(_item_text(item, family(dataset)) for item in record.context)


def summarizer_prompt(context: str, dataset: str, instruction: Instruction = "paper", own_words: str = "") -> str:
    """The instruction given to the summarizer for one user's context: App. I.1's ("paper"), one
    that asks for the stated preference ("stated"), or `own_words` when given."""
    tail = own_words or _SUMMARIZER_TAILS[family(dataset), instruction]
    if family(dataset) == "pets":
        return f"{context}\n\n{tail}"
    return f"{_GENERIC_INTRO}\n\n{context}\n\n{tail}"


def icl_conditioning(context: str, dataset: str) -> str:
    """App. J: the whole context placed in the reward model's input."""
    if family(dataset) == "pets":
        return (
            "Based on the user's past conversation, respond to the user's request in a way that aligns with "
            f"the user's preference. Conversation history: {context} Start of a new conversation:"
        )
    return f"{_GENERIC_INTRO}\n\n{context}\n\nHere's a new conversation:"


def summary_conditioning(summary: str, template: str = SUMMARY_CONDITIONING) -> str:
    """How a summary is given to the summary-conditioned reward model: in App. I.1's sentence (its last
    item) by default, or in a reward model's own `summary_template`."""
    return template.format(summary=summary.strip())


def strip_summary_header(text: str) -> str:
    """The summarizer is asked to start with '##Summary'; the reward model needs only the text."""
    text = text.strip()
    for header in ("##Summary:", "## Summary:", "##Summary", "## Summary"):
        if text.startswith(header):
            return text[len(header) :].strip()
    return text
