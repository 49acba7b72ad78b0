"""Zero-shot personalization: the OpenAI-compatible HTTP backend against a real server on
loopback (with scripted 429/500/timeouts/malformed replies), judge parsing, Alg. 2 and 3."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from pathlib import Path

import pytest
import uvicorn

from plusrl.data.registry import load_split
from plusrl.eval.zero_shot import (
    WinRate,
    generator_prompt,
    judge,
    judge_prompt,
    judge_table,
    load_summaries,
    parse_choice,
    save_summaries,
    win_table,
)
from plusrl.models.backends import (
    BackendConfig,
    BackendError,
    ChatBackend,
    ChatRequest,
    LocalChat,
    OpenAIChat,
)
from plusrl.serving.chat_server import create_chat_app


class EchoBackend(ChatBackend):
    """Answers 'Option 1' when the prompt mentions dogs in the summary part, else 'Option 2'."""

    def _complete_uncached(self, requests):
        return ["Option 1" if "dogs" in r.messages[-1][1].split("summary")[-1] else "Option 2." for r in requests]


class FaultScript:
    """ASGI middleware: the next scripted faults are served before the app answers for real."""

    def __init__(self, app):
        self.app, self.faults, self.requests, self.in_flight, self.max_in_flight = app, [], 0, 0, 0
        self.lock = threading.Lock()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].endswith("/chat/completions"):
            return await self.app(scope, receive, send)
        with self.lock:
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            fault = self.faults.pop(0) if self.faults else None
        try:
            if fault is None:
                await asyncio.sleep(0.05)
                return await self.app(scope, receive, send)
            kind, value = fault
            if kind == "sleep":
                await asyncio.sleep(value)
                return await self.app(scope, receive, send)
            status, body = (value, b'{"error": "scripted"}') if kind == "status" else (200, value)
            headers = [(b"content-type", b"application/json")] + ([(b"retry-after", b"0")] if status == 429 else [])
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        finally:
            with self.lock:
                self.in_flight -= 1


def _serve(app):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    return server, thread, f"http://127.0.0.1:{port}/v1"


@pytest.fixture()
def endpoint(tmp_path):
    script = FaultScript(create_chat_app(EchoBackend(BackendConfig(kind="echo", cache_dir=str(tmp_path / "inner")))))
    server, thread, url = _serve(script)
    yield script, url
    server.should_exit = True
    thread.join()


def _client(url, tmp_path, **overrides) -> OpenAIChat:
    settings = {"backoff_s": 0.01, "timeout_s": 2.0, **overrides}
    config = BackendConfig(kind="openai", model="echo", base_url=url, cache_dir=str(tmp_path / "cache"), **settings)
    return OpenAIChat(config)


def test_retries_429_and_500_then_answers_and_caches(endpoint, tmp_path):
    script, url = endpoint
    script.faults = [("status", 429), ("status", 500), ("status", 503)]
    backend = _client(url, tmp_path)
    request = ChatRequest.of("Which? summary: I love dogs", "You are a helpful assistant.")
    assert backend.complete([request]) == ["Option 1"]
    assert script.requests == 4
    assert backend.complete([request]) == ["Option 1"]  # from the disk cache
    assert _client(url, tmp_path).complete([request]) == ["Option 1"]  # a fresh process reads it too
    assert script.requests == 4


def test_timeouts_and_malformed_replies_are_retried_then_reported(endpoint, tmp_path):
    script, url = endpoint
    script.faults = [("sleep", 1.0), ("body", b"not json at all"), ("body", b'{"choices": []}')]
    assert _client(url, tmp_path, timeout_s=0.3).complete([ChatRequest.of("summary: cats")]) == ["Option 2."]
    assert script.requests == 4

    script.faults = [("body", b"<html>proxy error</html>")] * 3
    with pytest.raises(BackendError, match="no answer after 3 attempts.*malformed"):
        _client(url, tmp_path, max_retries=2).complete([ChatRequest.of("another question")])
    script.faults = [("sleep", 1.0)]
    with pytest.raises(BackendError, match="timeout"):
        _client(url, tmp_path, timeout_s=0.2, max_retries=0).complete([ChatRequest.of("a third question")])


def test_client_errors_are_not_retried(endpoint, tmp_path):
    script, url = endpoint
    script.faults = [("status", 401)]
    with pytest.raises(BackendError, match="HTTP 401"):
        _client(url, tmp_path).complete([ChatRequest.of("q")])
    assert script.requests == 1


def test_http_backends_refuse_constrained_answers_by_name(endpoint, tmp_path):
    script, url = endpoint
    with pytest.raises(BackendError, match="only a local model"):
        _client(url, tmp_path).complete([ChatRequest.of("q", choices=("Option 1", "Option 2"))])
    assert script.requests == 0


def test_concurrency_limit_is_respected(endpoint, tmp_path):
    script, url = endpoint
    replies = _client(url, tmp_path, concurrency=3).complete([ChatRequest.of(f"q{i} dogs") for i in range(12)])
    assert len(replies) == 12 and script.max_in_flight <= 3 and script.max_in_flight >= 2


@pytest.mark.parametrize("reply, expected", [
    ("Option 1", 1), ("option 2.", 2), ("I think Option 2 is better.", 2), ("**Option 1**", 1),
    ("Option #2", 2), ("The user would prefer option (1).", 1), ("2", 2), ("1. The first one", 1),
    ("Option 1 or Option 2, hard to say", None), ("Both are fine.", None), ("", None),
    ("The first response", None),
])
def test_parse_choice_on_real_looking_answers(reply, expected):
    assert parse_choice(reply) == expected


def test_prompts_follow_app_j1():
    p = judge_prompt("Tell me about pets.", "Dogs bark.", "Cats purr.")
    assert p.startswith("Here's a previous conversation between the user and the AI assistant: Tell me about pets.")
    assert "Option 1 is: Dogs bark. Option 2 is: Cats purr. Respond with" in p and "summary" not in p
    with_summary = judge_prompt("Tell me about pets.", "Dogs bark.", "Cats purr.", "Likes cats.")
    assert with_summary.startswith(p) and "summary about the user's preference based on past conversation: Likes cats." in with_summary
    assert generator_prompt("Name a pet") == "Name a pet"
    assert generator_prompt("Name a pet.", "Likes cats.").endswith("the following summary about the user's preference: Likes cats.")


def test_judge_over_http_counts_accuracy_per_type_and_keeps_option_order(endpoint, tmp_path):
    _, url = endpoint
    records = load_split("pets", "test")[:12]
    summaries = ["The user prefers dogs." if r.meta["user_type"] == "dogs" else "The user prefers cats." for r in records]
    rows = judge(_client(url, tmp_path), records, summaries)
    # the echo judge says "Option 1" whenever the summary part mentions dogs
    for row, summary in zip(rows, summaries):
        assert row["personalized"]["pick"] == (1 if "dogs" in summary else 2)
        assert row["default"]["pick"] == 2
    table = {r["conversation_type"]: r for r in judge_table(rows)}
    assert table["all"]["n"] == 12 and set(table) == {"cats", "dogs", "all"}
    again = judge(_client(url, tmp_path), records, summaries)
    assert [r["chosen_is_option"] for r in again] == [r["chosen_is_option"] for r in rows]  # fixed per query
    assert 0 < sum(r["chosen_is_option"] == 1 for r in rows) < 12  # and random across queries


def test_unparsable_answers_are_counted_not_guessed():
    rows = [{"conversation_type": "a", "default": {"pick": None, "correct": None},
             "personalized": {"pick": 1, "correct": True}},
            {"conversation_type": "a", "default": {"pick": 2, "correct": False},
             "personalized": {"pick": None, "correct": None}}]
    (a, _total) = judge_table(rows)
    assert a["default_accuracy"] == 0.0 and a["default_unparsable"] == 1
    assert a["personalized_accuracy"] == 1.0 and a["personalized_unparsable"] == 1


def test_win_rate_and_its_wilson_interval_by_hand():
    win = WinRate(wins=7, ties=2, n=10)
    assert win.rate == 0.8
    low, high = win.interval()
    # Wilson: centre = (0.8 + 3.8416/20) / 1.38416 = 0.71674; half = 1.96·sqrt(0.016 + 0.009604)/1.38416 = 0.22658
    assert abs(low - 0.49016) < 1e-4 and abs(high - 0.94332) < 1e-4
    rows = [{"conversation_type": "t", "reward_personalized": p, "reward_default": d} for p, d in [(1, 0), (0, 1), (1, 1)]]
    assert win_table(rows)[-1]["win_rate"] == 0.5


def test_summaries_export_and_import(tmp_path):
    path = tmp_path / "s.json"
    save_summaries(path, {"u1": "Likes dogs.", "u2": "Likes cats."}, source="test")
    assert load_summaries(path) == {"u1": "Likes dogs.", "u2": "Likes cats."}
    path.write_text(json.dumps({"summaries": {"u1": 3}}))
    with pytest.raises(ValueError, match="expected"):
        load_summaries(path)
    path.write_text("{broken")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_summaries(path)


@pytest.mark.slow
def test_the_embedded_model_judges_through_the_chat_server(tmp_path):
    """The real local model behind the real server, spoken to by the HTTP backend."""
    local = LocalChat(BackendConfig(kind="local", cache_dir=str(tmp_path / "local")))
    server, thread, url = _serve(create_chat_app(local, "smollm2-135m"))
    try:
        records = load_split("pets", "test")[:2]
        rows = judge(_client(url, tmp_path, timeout_s=120), records, ["The user prefers dogs."] * 2)
        assert all(isinstance(r["default"]["reply"], str) and r["default"]["reply"] for r in rows)
        assert all(r["default"]["pick"] in (1, 2, None) for r in rows)
    finally:
        server.should_exit = True
        thread.join()


@pytest.mark.slow
def test_the_embedded_model_answers_constrained_judge_requests_by_likelihood(tmp_path):
    local = LocalChat(BackendConfig(kind="local", cache_dir=str(tmp_path / "local")))
    echo = [ChatRequest.of(f"Reply with exactly these two words: {o}", choices=("Option 1", "Option 2"))
            for o in ("Option 1", "Option 2")]
    assert local.complete(echo) == ["Option 1", "Option 2"]
    records = load_split("pets", "test")[:4]
    rows = judge(local, records, ["The user prefers dogs."] * 4, constrained=True)
    assert all(r[k]["pick"] in (1, 2) for r in rows for k in ("default", "personalized"))  # never unparsable


def test_a_base_model_without_a_chat_template_summarizes_and_judges(tmp_path):
    """Gemma 3 270M and other base models have no chat template: they read a plain "User: …" /
    "Assistant:" transcript, and their reply ends where they start the next turn. Here SmolLM2
    with its template taken away stands in for one."""
    from plusrl.models.loader import chat_reply, resolve
    from plusrl.models.summarizer import Summarizer, SummarizerConfig

    embedded = Path(resolve("smollm2-135m"))
    base = tmp_path / "base-lm"
    base.mkdir()
    for item in embedded.iterdir():
        if item.name != "chat_template.jinja":
            (base / item.name).symlink_to(item)
    summarizer = Summarizer(SummarizerConfig(model=str(base), max_summary_tokens=24))
    assert not summarizer.tokenizer.chat_template
    record = load_split("pets", "test")[0]
    prompt = summarizer.tokenizer.decode(summarizer.prompt_ids(record, "pets"))
    assert prompt.startswith("User: Here is a request") and prompt.endswith("##Summary\n\nAssistant:")
    (summary,) = summarizer.summarize([record], "pets")
    assert summary and "User:" not in summary
    assert chat_reply(summarizer.tokenizer, " The user prefers dogs.\nUser: And cats?") == "The user prefers dogs."

    local = LocalChat(BackendConfig(kind="local", model=str(base), cache_dir=str(tmp_path / "local")))
    (reply,) = local.complete([ChatRequest.of("Name one animal.", max_tokens=24)])
    assert reply and "User:" not in reply
    assert local.complete([ChatRequest.of("Say yes.", choices=("yes", "no"))])[0] in ("yes", "no")
