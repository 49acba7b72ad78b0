"""PRISM (Kirk et al. 2024) as used by PLUS (§5.1, Tables 6 and 9), from the hub's own jsonl files.

Input folder (as `HannahRoseKirk/prism-alignment` serves it): `survey.jsonl` (one row per
`user_id`, `stated_prefs` ratings 0-100) and `conversations.jsonl` (one row per
`conversation_id`, with `user_id`, `conversation_type` and `conversation_history`: turns of
user messages and model responses, each response with a `score` and `within_turn_id`).

- Users are kept when they answered the survey and finished all six conversations.
- Each turn with two or more scored responses gives one example: chosen = the highest score,
  rejected = the lowest (turns whose responses all tie are dropped).
- Each record carries 3 other examples of the same user as context.
- Splits: `test_users` holds out a seeded share of users entirely (Table 9); of the others,
  each user's last conversation forms `test` (held-out conversations, Table 6), the rest `train`.
"""

from __future__ import annotations

import random
from pathlib import Path

from plusrl.data.readers import DataError, iter_jsonl
from plusrl.data.schema import PreferencePair, Record

ATTRIBUTES = ("values", "creativity", "fluency", "factuality", "diversity", "safety", "personalisation", "helpfulness")
N_CONVERSATIONS = 6
CONTEXT_EXAMPLES = 3
ORACLE = ("I've scored the following attributes based on how much I care about each attribute. A higher score "
          "indicates that this attribute is more important to me: {scores}. Now based on this information about "
          "myself, here's a new question:")


def _read_jsonl(path: Path) -> list[tuple[str, dict]]:
    if not path.is_file():
        raise DataError(f"{path}: not found. Download HannahRoseKirk/prism-alignment and pass the folder holding "
                        f"survey.jsonl and conversations.jsonl with --source")
    return list(iter_jsonl(path))


def _examples(where: str, conversation: dict) -> list[PreferencePair]:
    """One (prompt, chosen, rejected) per turn with distinct response scores."""
    history = conversation.get("conversation_history")
    if not isinstance(history, list):
        raise DataError(f"{where}: 'conversation_history' must be a list of turns")
    by_turn: dict[int, dict] = {}
    for message in history:
        turn = by_turn.setdefault(int(message.get("turn", 0)), {"prompt": None, "responses": []})
        if message.get("role") == "user":
            turn["prompt"] = message.get("content")
        elif message.get("role") == "model" and isinstance(message.get("score"), (int, float)):
            turn["responses"].append((message["score"], message.get("content") or ""))
    pairs = []
    for turn in (by_turn[k] for k in sorted(by_turn)):
        responses = [(s, c) for s, c in turn["responses"] if c.strip()]
        if not turn["prompt"] or len(responses) < 2:
            continue
        best, worst = max(responses), min(responses)
        if best[0] > worst[0]:
            pairs.append(PreferencePair(prompt=turn["prompt"], chosen=best[1], rejected=worst[1]))
    return pairs


def build(source: str | Path, seed: int = 0, held_out_user_fraction: float = 0.2) -> dict[str, list[Record]]:
    """{'train', 'test', 'test_users'} records of PRISM."""
    source = Path(source)
    survey = {}
    for where, row in _read_jsonl(source / "survey.jsonl"):
        prefs = row.get("stated_prefs")
        if not isinstance(row.get("user_id"), str) or not isinstance(prefs, dict):
            raise DataError(f"{where}: a survey row needs 'user_id' and 'stated_prefs' (ratings 0-100)")
        survey[row["user_id"]] = prefs
    conversations: dict[str, list] = {}
    for where, row in _read_jsonl(source / "conversations.jsonl"):
        if not isinstance(row.get("user_id"), str):
            raise DataError(f"{where}: a conversation row needs 'user_id'")
        conversations.setdefault(row["user_id"], []).append((where, row))
    users = sorted(u for u, convs in conversations.items() if u in survey and len(convs) >= N_CONVERSATIONS)
    if not users:
        raise DataError(f"{source}: no user both answered the survey and finished {N_CONVERSATIONS} conversations")
    rng = random.Random(seed)
    held_out = set(rng.sample(users, max(1, round(held_out_user_fraction * len(users))))) if len(users) > 1 else set()
    splits: dict[str, list[Record]] = {"train": [], "test": [], "test_users": []}
    for user in users:
        per_conversation = [(row, _examples(where, row)) for where, row in conversations[user]]
        every = [pair for _, pairs in per_conversation for pair in pairs]
        oracle = ORACLE.format(scores=", ".join(f"'{a}': {survey[user].get(a, 'n/a')}" for a in ATTRIBUTES))
        for index, (row, pairs) in enumerate(per_conversation):
            split = "test_users" if user in held_out else ("test" if index == len(per_conversation) - 1 else "train")
            for pair in pairs:
                others = [p for p in every if p != pair]  # nor a copy of it from a repeated conversation
                if len(others) < CONTEXT_EXAMPLES:
                    continue
                splits[split].append(Record(
                    user_id=user, context=rng.sample(others, CONTEXT_EXAMPLES), prompt=pair.prompt,
                    chosen=pair.chosen, rejected=pair.rejected, oracle=oracle,
                    meta={"conversation_type": str(row.get("conversation_type", "unknown")),
                          "conversation_id": str(row.get("conversation_id", ""))}))
    return splits
