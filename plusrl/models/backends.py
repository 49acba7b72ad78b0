"""Chat backends for zero-shot personalization: a judge or a response generator.

Two implementations behind one method, `complete(requests) -> replies`:
- `LocalChat`: a Hugging Face causal LM on this machine (the embedded SmolLM2 by default); it
  also answers constrained requests (`choices`) by reading token probabilities, which is how a
  135M model that cannot follow "answer Option 1 or Option 2" still gives a judgement;
- `OpenAIChat`: any OpenAI-compatible `/v1/chat/completions` endpoint (GPT-4-class APIs or a
  self-hosted vLLM / llama.cpp server), with timeouts, retries with backoff, a concurrency
  limit, and an on-disk response cache so that re-running an evaluation costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import time
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from plusrl.io import atomic_write_text
from plusrl.models.loader import cache_dir, chat_ids, chat_reply, chat_text, load_causal_lm, load_tokenizer
from plusrl.progress import progress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChatRequest:
    messages: tuple[tuple[str, str], ...]
    """(role, content) pairs."""
    max_tokens: int = 64
    temperature: float = 0.0
    choices: tuple[str, ...] = ()
    """When set, the reply is whichever of these is the most likely start of the assistant's
    turn (log-likelihood from the model's token probabilities; local models only)."""

    @classmethod
    def of(cls, user: str, system: str | None = None, **kwargs) -> ChatRequest:
        messages = ((("system", system),) if system else ()) + (("user", user),)
        return cls(messages, **kwargs)


class BackendError(RuntimeError):
    """A backend that could not answer (after its retries)."""


@dataclass
class BackendConfig:
    kind: str = "local"
    """local (a Hugging Face causal LM here) | openai (an OpenAI-compatible HTTP endpoint)"""
    model: str = "smollm2-135m"
    """local: embedded name, folder or hub id; openai: the endpoint's model name."""
    base_url: str = ""
    """openai: e.g. https://api.openai.com/v1 or http://127.0.0.1:8000/v1 (env PLUSRL_CHAT_BASE_URL)."""
    api_key_env: str = "OPENAI_API_KEY"
    """Name of the environment variable holding the API key (never the key itself)."""
    timeout_s: float = 60.0
    max_retries: int = 5
    backoff_s: float = 1.0
    """First retry delay; doubles each retry, with jitter; a Retry-After header wins."""
    concurrency: int = 8
    cache_dir: str = ""
    """Folder of cached replies (empty: $PLUSRL_CACHE/chat)."""
    batch_size: int = 8
    """local: prompts generated together."""


def _cache_dir(configured: str) -> Path:
    return Path(configured) if configured else cache_dir() / "chat"


class _ReplyCache:
    """One JSON file per (backend, model, request): a re-run reads instead of asking again."""

    def __init__(self, folder: Path, namespace: str):
        self.folder, self.namespace = folder, namespace

    def _path(self, request: ChatRequest) -> Path:
        key = json.dumps([self.namespace, asdict(request)], sort_keys=True)
        return self.folder / f"{hashlib.sha256(key.encode()).hexdigest()}.json"

    def get(self, request: ChatRequest) -> str | None:
        path = self._path(request)
        return json.loads(path.read_text())["reply"] if path.is_file() else None

    def put(self, request: ChatRequest, reply: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self._path(request), json.dumps({"request": asdict(request), "reply": reply}))


class ChatBackend(ABC):
    """Answers many chat requests through the reply cache; subclasses answer the misses."""

    def __init__(self, config: BackendConfig):
        self.config = config
        self.cache = _ReplyCache(_cache_dir(config.cache_dir), f"{config.kind}:{config.model}:{config.base_url}")

    def complete(self, requests: list[ChatRequest]) -> list[str]:
        replies = [self.cache.get(r) for r in requests]
        todo = [i for i, reply in enumerate(replies) if reply is None]
        if todo:
            for i, reply in zip(todo, self._complete_uncached([requests[i] for i in todo])):
                self.cache.put(requests[i], reply)
                replies[i] = reply
        return replies

    @abstractmethod
    def _complete_uncached(self, requests: list[ChatRequest]) -> list[str]:
        """One reply per request, in order (the cache missed all of them)."""


class LocalChat(ChatBackend):
    """A Hugging Face chat model run here, greedy or sampled, in batches."""

    def __init__(self, config: BackendConfig):
        super().__init__(config)
        self.tokenizer = load_tokenizer(config.model)
        self.tokenizer.padding_side = "left"
        self.lm = load_causal_lm(config.model).eval()

    def _prompt_text(self, request: ChatRequest) -> str:
        return chat_text(self.tokenizer, [{"role": r, "content": c} for r, c in request.messages])

    def _complete_uncached(self, requests: list[ChatRequest]) -> list[str]:
        constrained = [i for i, r in enumerate(requests) if r.choices]
        free = [i for i, r in enumerate(requests) if not r.choices]
        replies: dict[int, str] = dict(zip(free, self._generate([requests[i] for i in free])))
        replies |= {i: self._most_likely_choice(requests[i]) for i in progress(constrained, desc="choosing", unit="request")}
        return [replies[i] for i in range(len(requests))]

    @torch.no_grad()
    def _most_likely_choice(self, request: ChatRequest) -> str:
        """The choice whose tokens, as the assistant's reply, have the highest total log-probability."""
        prompt = chat_ids(self.tokenizer, self._prompt_text(request))
        rows = [prompt + self.tokenizer(c, add_special_tokens=False)["input_ids"] for c in request.choices]
        width = max(map(len, rows))
        ids = torch.tensor([[self.tokenizer.pad_token_id] * (width - len(r)) + r for r in rows])
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
        positions = (mask.cumsum(1) - 1).clamp(min=0)
        logprobs = self.lm(input_ids=ids, attention_mask=mask, position_ids=positions).logits[:, :-1].log_softmax(-1)
        token_logprobs = logprobs.gather(2, ids[:, 1:, None]).squeeze(-1)
        scores = [token_logprobs[k, width - 1 - (len(row) - len(prompt)) :].sum().item() for k, row in enumerate(rows)]
        return request.choices[max(range(len(scores)), key=scores.__getitem__)]

    @torch.no_grad()
    def _generate(self, requests: list[ChatRequest]) -> list[str]:
        replies = []
        for start in progress(range(0, len(requests), self.config.batch_size), desc="generating", unit="batch"):
            chunk = requests[start : start + self.config.batch_size]
            for (max_tokens, temperature), group in _by_settings(chunk).items():
                texts = [self._prompt_text(req) for _, req in group]
                batch = self.tokenizer.pad({"input_ids": [chat_ids(self.tokenizer, t) for t in texts]},
                                           return_tensors="pt")
                out = self.lm.generate(**batch, max_new_tokens=max_tokens, do_sample=temperature > 0,
                                       temperature=temperature or None, top_p=None, top_k=None,
                                       pad_token_id=self.tokenizer.pad_token_id)
                for (index, _), ids in zip(group, out[:, batch["input_ids"].shape[1] :]):
                    text = self.tokenizer.decode(ids, skip_special_tokens=True)
                    replies.append((start + index, chat_reply(self.tokenizer, text)))
        return [reply for _, reply in sorted(replies)]


def _by_settings(chunk: list[ChatRequest]) -> dict:
    groups: dict = {}
    for i, req in enumerate(chunk):
        groups.setdefault((req.max_tokens, req.temperature), []).append((i, req))
    return groups


class OpenAIChat(ChatBackend):
    """POST /chat/completions to an OpenAI-compatible server; retries 429, 5xx, timeouts and
    malformed replies with exponential backoff; at most `concurrency` requests in flight."""

    RETRYABLE = frozenset({408, 409, 425, 429, 500, 502, 503, 504})

    def __init__(self, config: BackendConfig):
        super().__init__(config)
        import httpx

        base_url = config.base_url or os.environ.get("PLUSRL_CHAT_BASE_URL", "")
        if not base_url:
            raise BackendError("openai backend: set backend.base_url (or PLUSRL_CHAT_BASE_URL), "
                               "e.g. https://api.openai.com/v1 or http://127.0.0.1:8000/v1")
        self.url = base_url.rstrip("/") + "/chat/completions"
        key = os.environ.get(config.api_key_env, "")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client = httpx.Client(timeout=config.timeout_s, headers=headers)

    def _complete_uncached(self, requests: list[ChatRequest]) -> list[str]:
        if any(r.choices for r in requests):
            raise BackendError("constrained answers (choices) read token probabilities, which only a local model "
                               "gives; ask this endpoint for free text (plusrl judge --answer free)")
        with ThreadPoolExecutor(max_workers=max(1, self.config.concurrency)) as pool:
            return list(pool.map(self._complete_one, requests))

    def _complete_one(self, request: ChatRequest) -> str:
        import httpx

        body = {"model": self.config.model, "max_tokens": request.max_tokens, "temperature": request.temperature,
                "messages": [{"role": r, "content": c} for r, c in request.messages]}
        errors: list[str] = []
        retry_after: float | None = None
        for retry in range(self.config.max_retries + 1):
            if retry:
                delay = retry_after or self.config.backoff_s * 2 ** (retry - 1) * (0.5 + random.random())
                time.sleep(delay)
            retry_after = None
            try:
                response = self.client.post(self.url, json=body)
            except httpx.TimeoutException:
                errors.append("timeout")
                continue
            except httpx.TransportError as error:
                errors.append(f"connection: {error}")
                continue
            if response.status_code in self.RETRYABLE:
                errors.append(f"HTTP {response.status_code}")
                if header := response.headers.get("retry-after"):
                    try:
                        retry_after = min(float(header), 60.0)
                    except ValueError:
                        pass
                continue
            if response.status_code >= 400:  # 400/401/403/404: asking again will not help
                raise BackendError(f"{self.url}: HTTP {response.status_code}: {response.text[:300]}")
            try:
                return response.json()["choices"][0]["message"]["content"] or ""
            except (ValueError, KeyError, IndexError, TypeError):
                errors.append(f"malformed reply: {response.text[:120]!r}")
        raise BackendError(f"{self.url}: no answer after {self.config.max_retries + 1} attempts "
                           f"({'; '.join(errors[-3:])})")


def make_backend(config: BackendConfig) -> ChatBackend:
    if config.kind == "local":
        return LocalChat(config)
    if config.kind == "openai":
        return OpenAIChat(config)
    raise BackendError(f"unknown backend kind {config.kind!r} (local | openai)")
