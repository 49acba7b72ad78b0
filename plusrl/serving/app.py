"""The personalization service: users see, edit and own their summary; predictions follow.

    plusrl serve --model-dir runs/pets-plus --db plusrl.db

The summarizer and the summary-conditioned reward model load once at start-up. Scoring
requests from concurrent clients are gathered into one reward-model batch. Context text is
only ever data passed to the summarizer; nothing in it is read as a command.

Every request costs bounded work (`guard.py`: body limit and authentication before the body
is read; quotas, rate limits; texts cut by characters before tokenizing), and users own their
data: export it, delete it, rotate their token.
"""


import asyncio
import logging
import os
import secrets
import threading
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import AfterValidator, BaseModel, Field, StrictInt, TypeAdapter, ValidationError

from plusrl.data.prompts import summary_conditioning
from plusrl.data.schema import ContextItem
from plusrl.models.loader import CHARS_PER_TOKEN
from plusrl.run_dir import SUMMARIZER, RunDir
from plusrl.serving.guard import RateLimiter, RequestGuard, ServiceLimits, TooManyRequests
from plusrl.serving.store import NotFound, QuotaExceeded, Store, SummaryVersion
from plusrl.serving.summary_worker import SummarizerUnavailable, SummaryWorker

log = logging.getLogger(__name__)

MAX_TEXT = 20_000  # characters per context item, summary or response


class Models:
    """The trained summarizer and reward model of a PLUS run (or the embedded defaults).

    The reward model lives in this process; the summarizer in a low-priority child process
    (`SummaryWorker`), so scoring never waits behind a summary generation (tens of seconds on a
    CPU), not even for the cores.
    """

    def __init__(self, model_dir: str | None, dataset: str = "generic"):
        from plusrl.models.reward_model import RewardModel, RewardModelConfig
        from plusrl.models.summarizer import Summarizer, SummarizerConfig

        self.dataset, self.trained = dataset, model_dir is not None
        if model_dir:
            run = RunDir(model_dir)
            if not run.has_summarizer():
                raise FileNotFoundError(f"{model_dir}: no PLUS checkpoint with a summarizer (train --method plus)")
            summarizer_dir, self.reward_model = run.checkpoint() / SUMMARIZER, run.reward_model()
            self.summarizer_config = Summarizer.load_config(summarizer_dir)
        else:
            log.warning("no --model-dir: embedded summarizer and an untrained reward model (scores are not meaningful)")
            summarizer_dir, self.reward_model, self.summarizer_config = None, RewardModel(RewardModelConfig()), SummarizerConfig()
        self.reward_model.eval()
        self.summary_worker = SummaryWorker(summarizer_dir, dataset)
        self.reward_lock = threading.Lock()

    @property
    def context_budget_bytes(self) -> int:
        """Stored context beyond this many bytes (newest first) cannot reach the summarizer's prompt,
        which reads at most max_prompt_tokens * CHARS_PER_TOKEN characters of up to 4 UTF-8 bytes."""
        return 4 * self.summarizer_config.max_prompt_tokens * CHARS_PER_TOKEN

    async def summarize(self, user_id: str, items: list[dict]) -> str:
        return await self.summary_worker.summarize(user_id, items)

    def score(self, rows: list[tuple[str | None, str, str]]) -> list[float]:
        """(summary or None, prompt, response) → reward; None scores without a summary."""
        import torch

        out = [0.0] * len(rows)
        with self.reward_lock, torch.no_grad():
            for has_summary in (True, False):
                idx = [i for i, row in enumerate(rows) if (row[0] is not None) == has_summary]
                if not idx:
                    continue
                cond = [summary_conditioning(rows[i][0]) for i in idx] if has_summary else None
                scores = self.reward_model.score(cond, [rows[i][1] for i in idx], [rows[i][2] for i in idx])
                for i, s in zip(idx, scores.float().tolist()):
                    out[i] = s
        return out


@dataclass
class _ScoreJob:
    rows: list[tuple]
    future: asyncio.Future
    scores: list[float]

    @property
    def cost(self) -> int:
        """Characters left to score (each text counts up to what the reward model reads of it)."""
        return sum(_row_cost(row) for row in self.rows[len(self.scores):])


def _row_cost(row: tuple) -> int:
    return sum(min(len(text or ""), MAX_TEXT) for text in row)


class ScoreBatcher:
    """Scores rows from concurrent requests together, cheapest requests first.

    Requests arriving within a few milliseconds share one reward-model batch. A large request
    is scored in chunks of at most `max_rows` rows and `max_chars` characters, and before each
    chunk the cheapest waiting requests go first, so a small request waits for at most one
    chunk of someone else's large one.
    """

    def __init__(self, score_fn, max_rows: int = 64, max_chars: int = 64 * 2_000, max_wait_s: float = 0.005):
        self.score_fn, self.max_rows, self.max_chars, self.max_wait_s = score_fn, max_rows, max_chars, max_wait_s
        self.queue: asyncio.Queue = asyncio.Queue()
        self.task: asyncio.Task | None = None

    async def score(self, rows: list[tuple]) -> list[float]:
        future = asyncio.get_running_loop().create_future()
        await self.queue.put(_ScoreJob(rows, future, []))
        return await future

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        jobs: list[_ScoreJob] = []
        while True:
            if not jobs:
                jobs.append(await self.queue.get())
                await asyncio.sleep(self.max_wait_s)  # let concurrent requests join this batch
            while not self.queue.empty():
                jobs.append(self.queue.get_nowait())
            jobs.sort(key=lambda job: job.cost)
            chunk, taken, chars = [], [], 0
            for job in jobs:
                for row in job.rows[len(job.scores):]:
                    if chunk and (len(chunk) >= self.max_rows or chars + _row_cost(row) > self.max_chars):
                        break
                    chunk.append(row)
                    chars += _row_cost(row)
                    taken.append(job)
            try:
                scores = await loop.run_in_executor(None, self.score_fn, chunk)
            except Exception as error:  # noqa: BLE001 - each request in the chunk gets the error
                for job in dict.fromkeys(taken):
                    if not job.future.done():  # a client that went away has its future cancelled
                        job.future.set_exception(error)
                jobs = [job for job in jobs if job not in taken]
                continue
            for job, value in zip(taken, scores):
                job.scores.append(value)
            for job in [j for j in jobs if len(j.scores) == len(j.rows)]:
                if not job.future.done():  # a client that went away has its future cancelled
                    job.future.set_result(job.scores)
            jobs = [job for job in jobs if len(job.scores) < len(job.rows)]


# -- API models -------------------------------------------------------------------------------

def _storable(text: str) -> str:
    """Refuse what SQLite cannot store (lone surrogates) and text with nothing visible in it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text is not valid Unicode (a lone surrogate?)") from None
    if text and not text.strip():
        raise ValueError("text is only whitespace")
    return text


Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT), AfterValidator(_storable)]


class NewUser(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_storable)] = "user"


class ContextIn(BaseModel):
    items: Annotated[list[dict], Field(min_length=1, max_length=100)]


class SummaryIn(BaseModel):
    text: Text


class RevertIn(BaseModel):
    version: Annotated[StrictInt, Field(ge=1, le=2**31 - 1)]


class ScoreIn(BaseModel):
    prompt: Text
    responses: Annotated[list[Text], Field(min_length=1, max_length=32)]
    summary: Annotated[str, Field(max_length=MAX_TEXT), AfterValidator(_storable)] | None = None
    """Score under this text instead of the stored summary (a live preview while editing)."""


def _version(v: SummaryVersion | None) -> dict | None:
    return None if v is None else {"version": v.version, "text": v.text, "author": v.author, "note": v.note,
                                   "created_at": v.created_at}


@dataclass
class Principal:
    user_id: str | None  # None for the admin

    @property
    def is_admin(self) -> bool:
        return self.user_id is None


def _retry_after(seconds: float) -> list[tuple[bytes, bytes]]:
    return [(b"retry-after", str(max(1, round(seconds + 0.5))).encode())]


def create_app(store: Store, models: Models, admin_token: str | None = None,
               limits: ServiceLimits | None = None) -> FastAPI:
    admin_token = admin_token or os.environ.get("PLUSRL_ADMIN_TOKEN") or secrets.token_urlsafe(24)
    limits = limits or ServiceLimits()
    batcher = ScoreBatcher(models.score)
    registrations = RateLimiter(limits.registrations_per_minute)
    writes = RateLimiter(limits.writes_per_minute)
    generations = RateLimiter(limits.generations_per_minute)
    generating: set[str] = set()  # users whose summary is being generated now (one each)

    @asynccontextmanager
    async def lifespan(_app):
        batcher.task = asyncio.create_task(batcher.run())
        yield
        batcher.task.cancel()

    # /docs and /redoc would load their scripts from a CDN; the schema is served at /openapi.json.
    app = FastAPI(title="plusrl personalization service", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Users see, edit and own the text summary that personalizes the reward model.")
    app.state.admin_token = admin_token

    def authenticate(scope) -> tuple[int, str, list] | None:
        """Runs on the headers alone, before any body is read (see RequestGuard)."""
        path, method = scope["path"], scope["method"]
        if not path.startswith("/api/") or path == "/api/health":
            return None
        token = None
        for name, value in scope["headers"]:
            if name == b"authorization" and value[:7].lower() == b"bearer ":
                token = value[7:].strip()
        is_admin = token is not None and secrets.compare_digest(token, admin_token.encode())
        if path == "/api/users" and method == "POST":  # registration
            if limits.registration == "closed":
                return 403, "registration is closed on this server", []
            if limits.registration == "admin" and not is_admin:
                return 403, "on this server only the admin creates accounts", []
            client = (scope.get("client") or ("?", 0))[0]
            if not is_admin and (wait := registrations.acquire(client)):
                return 429, f"too many new accounts from {client}: retry later", _retry_after(wait)
            return None
        if token is None:
            return 401, "send 'Authorization: Bearer <token>'", []
        user_id = None if is_admin else store.user_for_token(token.decode("latin-1"))
        if not is_admin and user_id is None:
            return 401, "unknown token", []
        scope.setdefault("state", {})["principal"] = Principal(user_id)
        if method in ("POST", "PUT", "DELETE") and not path.endswith(("/score", "/summary/generate")) and not is_admin:
            if wait := writes.acquire(user_id):
                return 429, "too many writes: slow down", _retry_after(wait)
        return None

    app.add_middleware(RequestGuard, limits=limits, authenticate=authenticate)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request, error: RequestValidationError):
        """Say where and what, never echo the input back (it can be megabytes, or unserialisable)."""
        detail = [{"loc": list(e["loc"]), "msg": str(e["msg"])[:300], "type": e["type"]} for e in error.errors()[:20]]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(QuotaExceeded)
    async def over_quota(_request, error: QuotaExceeded):
        return JSONResponse({"detail": str(error)}, status_code=409)

    @app.exception_handler(TooManyRequests)
    async def too_many(_request, error: TooManyRequests):
        return JSONResponse({"detail": str(error)}, status_code=429,
                            headers={"Retry-After": str(max(1, round(error.retry_after_s + 0.5)))})

    def principal(request: Request) -> Principal:
        return request.state.principal  # set by authenticate(); every /api/ route but health has one

    def owner(user_id: str, who: Annotated[Principal, Depends(principal)]) -> str:
        """A user reaches only their own data; the admin reaches everyone's."""
        if not who.is_admin and who.user_id != user_id:
            raise HTTPException(403, "this token belongs to another user")
        try:
            store.user(user_id)
        except NotFound:
            raise HTTPException(404, f"no user {user_id!r}") from None
        return user_id

    Owner = Annotated[str, Depends(owner)]
    Offset = Annotated[int, Query(ge=0, le=2**31 - 1)]
    Limit = Annotated[int, Query(ge=1, le=limits.page_size)]

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return (Path(__file__).parent / "static" / "index.html").read_text()

    @app.get("/api/health")
    def health() -> dict:
        return {"ok": True, "trained_models": models.trained}

    # -- accounts -------------------------------------------------------------------------------

    @app.post("/api/users", status_code=201)
    def create_user(body: NewUser) -> dict:
        user_id, token = store.create_user(body.name)
        return {"user_id": user_id, "token": token, "note": "keep this token: it is shown once"}

    @app.get("/api/users")
    def list_users(who: Annotated[Principal, Depends(principal)]) -> list[dict]:
        if not who.is_admin:
            raise HTTPException(403, "listing users needs the admin token")
        return store.users()

    @app.get("/api/me")
    def me(who: Annotated[Principal, Depends(principal)]) -> dict:
        return {"user_id": who.user_id, "admin": who.is_admin}

    @app.delete("/api/users/{user_id}")
    def delete_account(user_id: Owner) -> dict:
        """The account and everything in it (context, summaries, token), in one transaction."""
        store.delete_user(user_id)
        return {"deleted": user_id}

    @app.post("/api/users/{user_id}/token")
    def rotate_token(user_id: Owner) -> dict:
        return {"token": store.rotate_token(user_id), "note": "the old token no longer works"}

    @app.get("/api/users/{user_id}/export")
    def export(user_id: Owner) -> JSONResponse:
        return JSONResponse(store.export(user_id),
                            headers={"Content-Disposition": f'attachment; filename="plusrl-{user_id}.json"'})

    # -- context ------------------------------------------------------------------------------

    @app.post("/api/users/{user_id}/context")
    def add_context(user_id: Owner, body: ContextIn) -> dict:
        items = []
        for i, raw in enumerate(body.items):
            try:
                item = TypeAdapter(ContextItem).validate_python(raw)
                _storable(item.model_dump_json())
            except (ValidationError, ValueError) as error:
                first = error.errors()[0] if isinstance(error, ValidationError) else {"msg": str(error), "loc": ()}
                raise HTTPException(422, f"items[{i}]: {first['msg']} at {'.'.join(map(str, first['loc']))}") from None
            if len(item.model_dump_json()) > MAX_TEXT:
                raise HTTPException(422, f"items[{i}]: longer than {MAX_TEXT} characters")
            items.append(item.model_dump())
        return {"n_items": store.add_context(user_id, items)}

    @app.get("/api/users/{user_id}/context")
    def get_context(user_id: Owner, offset: Offset = 0, limit: Limit = limits.page_size) -> JSONResponse:
        """Oldest first, one page at a time; X-Total-Count says how many there are."""
        return JSONResponse(store.context(user_id, offset, limit),
                            headers={"X-Total-Count": str(store.count_context(user_id))})

    @app.delete("/api/users/{user_id}/context")
    def clear_context(user_id: Owner, drop_model_summaries: bool = False) -> dict:
        """Delete the context; with drop_model_summaries=true also the summaries the model wrote from it."""
        return {"n_items": 0, "summaries_dropped": store.clear_context(user_id, drop_model_summaries)}

    # -- summary --------------------------------------------------------------------------------

    def may_generate(user_id: str) -> None:
        """One generation per user at a time, a bounded queue, and a per-user rate."""
        if user_id in generating:
            raise HTTPException(429, "a summary is already being written for you; wait for it",
                                headers={"Retry-After": "10"})
        if len(generating) >= limits.max_queued_generations:
            raise HTTPException(429, "the summarizer is busy: retry in a minute", headers={"Retry-After": "30"})
        if wait := generations.acquire(user_id):
            raise TooManyRequests(wait, "summary generations")

    async def write_summary(user_id: str, items: list[dict], note: str) -> dict:
        """The summarizer's summary of `items`, saved as the user's newest version."""
        generating.add(user_id)
        try:
            text = await models.summarize(user_id, items)
        except SummarizerUnavailable as error:
            raise HTTPException(503, str(error), headers={"Retry-After": "60"}) from None
        finally:
            generating.discard(user_id)
        return _version(store.add_summary(user_id, text, "model", note=note))

    @app.post("/api/users/{user_id}/summary/generate")
    async def generate_summary(user_id: Owner) -> dict:
        may_generate(user_id)
        items = store.newest_context(user_id, models.context_budget_bytes)
        if not items:
            raise HTTPException(409, "no context yet: add conversations or preference pairs first")
        n = store.count_context(user_id)
        note = f"from the newest {len(items)} of {n} context items" if len(items) < n else f"from {n} context items"
        return await write_summary(user_id, items, note)

    @app.post("/api/users/{user_id}/summary/restate")
    async def restate_summary(user_id: Owner, body: SummaryIn) -> dict:
        """Save the user's own words, then the summarizer's restatement of them, which the reward model
        reads as it reads the summaries it was trained on (a small reward model can take "I can't stand
        cats" for a mention of cats). Both are versions the user sees; revert keeps the words alone."""
        may_generate(user_id)
        own = store.add_summary(user_id, body.text, "user", note="edited")
        restated = await write_summary(user_id, [{"kind": "text", "text": body.text}],
                                       note=f"your words of version {own.version}, restated by the summarizer")
        return {"yours": _version(own), "restated": restated}

    @app.get("/api/users/{user_id}/summary")
    def get_summary(user_id: Owner) -> dict:
        return {"summary": _version(store.summary(user_id))}

    @app.put("/api/users/{user_id}/summary")
    def edit_summary(user_id: Owner, body: SummaryIn) -> dict:
        return _version(store.add_summary(user_id, body.text, "user", note="edited"))

    @app.get("/api/users/{user_id}/summary/history")
    def history(user_id: Owner, offset: Offset = 0, limit: Limit = limits.page_size) -> list[dict]:
        """Newest first, one page at a time."""
        return [_version(v) for v in store.history(user_id, offset, limit)]

    @app.delete("/api/users/{user_id}/summary/history")
    def prune_history(user_id: Owner, keep: Annotated[int, Query(ge=1, le=2**31 - 1)]) -> dict:
        """Keep only the newest `keep` versions."""
        return {"dropped": store.prune_history(user_id, keep)}

    @app.post("/api/users/{user_id}/summary/revert")
    def revert(user_id: Owner, body: RevertIn) -> dict:
        try:
            return _version(store.revert(user_id, body.version))
        except NotFound as error:
            raise HTTPException(404, str(error)) from None

    # -- predictions ----------------------------------------------------------------------------

    @app.post("/api/users/{user_id}/score")
    async def score(user_id: Owner, body: ScoreIn) -> dict:
        """Rewards of each response with the user's summary and without; rankings of both."""
        summary = body.summary if body.summary is not None else getattr(store.summary(user_id), "text", None)
        rows = [(summary, body.prompt, r) for r in body.responses] if summary else []
        rows += [(None, body.prompt, r) for r in body.responses]
        scores = await batcher.score(rows)
        n = len(body.responses)
        with_summary = scores[:n] if summary else None
        without = scores[-n:]

        def ranking(values):
            return sorted(range(n), key=lambda i: -values[i])

        return {"summary_used": summary, "with_summary": with_summary, "without_summary": without,
                "ranking_with_summary": ranking(with_summary) if with_summary else None,
                "ranking_without_summary": ranking(without)}

    return app
