"""Zero-shot personalization with summaries (PLUS §6.6, App. J.1).

- `judge` (Alg. 2): an LLM judge picks which of two responses a user prefers, once without
  and once with the user's summary; accuracy per conversation type (Table 7 layout).
- `personalize` (Alg. 3): a generator answers a user's new prompt with and without the
  summary; an oracle-conditioned reward model scores both; win rate (Table 8 layout).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from plusrl.data.schema import Record
from plusrl.io import atomic_write_text
from plusrl.models.backends import ChatBackend, ChatRequest

JUDGE_SYSTEM = "You are a helpful assistant."
_JUDGE_QUESTION = (
    "Here's a previous conversation between the user and the AI assistant: {conversation} "
    "Decide which response the user would prefer—option 1 or option 2. Option 1 is: {option_1}. "
    "Option 2 is: {option_2}. Respond with Option 1 or Option 2 based on what you know about the user."
)
_JUDGE_SUMMARY = (
    " Here's a summary about the user's preference based on past conversation: {summary} "
    "Based on his information about the user, predict which response they would prefer."
)
GENERATOR_SYSTEM = "You are a helpful assistant. Keep your response short—under 100 words."
_GENERATOR_SUMMARY = "{prompt}. Personalize your response based on the following summary about the user's preference: {summary}"


def judge_prompt(conversation: str, option_1: str, option_2: str, summary: str | None = None) -> str:
    """App. J.1 judge prompt, without or with the user's summary."""
    text = _JUDGE_QUESTION.format(conversation=conversation, option_1=option_1.rstrip(". "),
                                  option_2=option_2.rstrip(". "))
    return text + (_JUDGE_SUMMARY.format(summary=summary) if summary is not None else "")


def generator_prompt(prompt: str, summary: str | None = None) -> str:
    """App. J.1 response prompt, without or with the user's summary."""
    return prompt if summary is None else _GENERATOR_SUMMARY.format(prompt=prompt.rstrip(". "), summary=summary)


_OPTION = re.compile(r"\boption\s*#?\s*[\"'(\[]?([12])\b", re.IGNORECASE)
_BARE = re.compile(r"^\W*([12])\b")


def parse_choice(reply: str) -> int | None:
    """1 or 2 when the reply names exactly one option; None when it names none or both."""
    named = {int(m) for m in _OPTION.findall(reply)}
    if len(named) == 1:
        return named.pop()
    if not named and (bare := _BARE.match(reply)):
        return int(bare.group(1))
    return None


def chosen_first(record: Record, index: int, seed: int = 0) -> bool:
    """Whether the chosen response is shown as option 1: random, but fixed per query."""
    digest = hashlib.sha256(f"{seed}:{record.user_id}:{index}:{record.prompt}".encode()).digest()
    return digest[0] % 2 == 0


JUDGE_CHOICES = ("Option 1", "Option 2")


def judge(backend: ChatBackend, records: list[Record], summaries: list[str], seed: int = 0,
          max_tokens: int = 16, constrained: bool = False) -> list[dict]:
    """Alg. 2: one row per record with the judge's pick without and with the summary.

    `constrained` asks for the more likely of "Option 1" / "Option 2" (token probabilities,
    local models) instead of parsing free text: small models rarely answer in the format.
    """
    requests, orders = [], []
    for i, (record, summary) in enumerate(zip(records, summaries, strict=True)):
        first = chosen_first(record, i, seed)
        options = (record.chosen, record.rejected) if first else (record.rejected, record.chosen)
        orders.append(first)
        for with_summary in (None, summary):
            requests.append(ChatRequest.of(judge_prompt(record.prompt, *options, with_summary), JUDGE_SYSTEM,
                                           max_tokens=max_tokens, choices=JUDGE_CHOICES if constrained else ()))
    replies = backend.complete(requests)
    rows = []
    for i, record in enumerate(records):
        correct_option = 1 if orders[i] else 2
        row = {"user_id": record.user_id, "conversation_type": conversation_type(record),
               "chosen_is_option": correct_option}
        for name, reply in (("default", replies[2 * i]), ("personalized", replies[2 * i + 1])):
            pick = parse_choice(reply)
            row[name] = {"reply": reply, "pick": pick, "correct": None if pick is None else pick == correct_option}
        rows.append(row)
    return rows


def conversation_type(record: Record) -> str:
    meta = record.meta or {}
    return str(meta.get("conversation_type") or meta.get("user_type") or "all")


def judge_table(rows: list[dict]) -> list[dict]:
    """Table 7 layout: accuracy default → personalized per conversation type; unparsable
    answers are counted apart and left out of the accuracy (never guessed)."""
    table = []
    for kind in [*sorted({r["conversation_type"] for r in rows}), "all"]:
        group = [r for r in rows if kind == "all" or r["conversation_type"] == kind]
        entry = {"conversation_type": kind, "n": len(group)}
        for name in ("default", "personalized"):
            parsed = [r[name]["correct"] for r in group if r[name]["pick"] is not None]
            entry[f"{name}_accuracy"] = sum(parsed) / len(parsed) if parsed else float("nan")
            entry[f"{name}_unparsable"] = len(group) - len(parsed)
        table.append(entry)
    return table


@dataclass
class WinRate:
    wins: int
    ties: int
    n: int

    @property
    def rate(self) -> float:
        return (self.wins + 0.5 * self.ties) / self.n if self.n else float("nan")

    def interval(self, z: float = 1.96) -> tuple[float, float]:
        """Wilson 95 % interval of the win rate (ties count half)."""
        if not self.n:
            return float("nan"), float("nan")
        p, n = self.rate, self.n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return max(0.0, centre - half), min(1.0, centre + half)


def personalize(backend: ChatBackend, records: list[Record], summaries: list[str], max_tokens: int = 96) -> list[dict]:
    """Alg. 3, generation half: a response to each record's prompt without and with the summary."""
    requests = []
    for record, summary in zip(records, summaries, strict=True):
        for with_summary in (None, summary):
            requests.append(ChatRequest.of(generator_prompt(record.prompt, with_summary), GENERATOR_SYSTEM,
                                           max_tokens=max_tokens))
    replies = backend.complete(requests)
    return [{"user_id": r.user_id, "conversation_type": conversation_type(r), "prompt": r.prompt, "summary": s,
             "default": replies[2 * i], "personalized": replies[2 * i + 1]}
            for i, (r, s) in enumerate(zip(records, summaries))]


def score_with_oracle(rows: list[dict], records: list[Record], oracle_rm) -> list[dict]:
    """Alg. 3, judging half: the oracle reward model (conditioned on each user's true preference)
    scores the default and the personalized response; adds `reward_default`/`reward_personalized`."""
    from plusrl.eval.accuracy import score_responses

    oracle = [r.oracle or "" for r in records]
    prompts = [r.prompt for r in records]
    default = score_responses(oracle_rm, oracle, prompts, [r["default"] for r in rows])
    personal = score_responses(oracle_rm, oracle, prompts, [r["personalized"] for r in rows])
    return [{**row, "reward_default": d, "reward_personalized": p}
            for row, d, p in zip(rows, default.tolist(), personal.tolist(), strict=True)]


def win_table(rows: list[dict]) -> list[dict]:
    """Table 8 layout: how often the personalized response out-scores the default one."""
    table = []
    for kind in [*sorted({r["conversation_type"] for r in rows}), "all"]:
        group = [r for r in rows if kind == "all" or r["conversation_type"] == kind]
        wins = sum(r["reward_personalized"] > r["reward_default"] for r in group)
        ties = sum(r["reward_personalized"] == r["reward_default"] for r in group)
        win = WinRate(wins, ties, len(group))
        low, high = win.interval()
        table.append({"conversation_type": kind, "n": len(group), "win_rate": win.rate, "ci_low": low, "ci_high": high})
    return table


# -- summaries as a product: export, edit, import ---------------------------------------------


def save_summaries(path: Path, summaries: dict[str, str], source: str) -> None:
    """Write {user_id: summary} with where they came from; a person can edit the file."""
    atomic_write_text(path, json.dumps({"source": source, "summaries": summaries}, indent=2, ensure_ascii=False) + "\n")


def load_summaries(path: Path) -> dict[str, str]:
    from plusrl.data.readers import DataError

    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such summaries file (write one with `plusrl summarize --out`)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise DataError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from None
    summaries = data.get("summaries", data) if isinstance(data, dict) else None
    if not isinstance(summaries, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in summaries.items()):
        raise DataError(f"{path}: expected {{\"summaries\": {{user_id: summary text}}}}")
    return summaries
