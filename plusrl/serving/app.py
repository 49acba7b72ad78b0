"""The personalization service: users see, edit and own their summary; predictions follow.

    plusrl serve --model-dir runs/pets-plus --db plusrl.db

The summarizer and the summary-conditioned reward model load once at start-up. Scoring
requests from concurrent clients are gathered into one reward-model batch. Context text is
only ever data passed to the summarizer; nothing in it is read as a command.

Every request costs bounded work (`guard.py`: body limit and authentication before the body
is read; quotas, rate limits; texts cut by characters before tokenizing), and users own their
data: export it, delete it, rotate their token. The routes, one router per concern, are in `routes.py`;
this module holds the models, the score batcher, authentication and the app that joins them.
"""


import asyncio
import json
import logging
import os
import secrets
import threading
from contextlib import asynccontextmanager
from functools import partial
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse

from plusrl.models.loader import CHARS_PER_TOKEN
from plusrl.run_dir import SUMMARIZER, RunDir
from plusrl.serving.guard import RequestGuard, ServiceLimits, TooManyRequests
from plusrl.serving.routes import MAX_TEXT, ROUTERS, Principal, Service
from plusrl.serving.store import QuotaExceeded, Store
from plusrl.serving.summary_worker import SummaryWorker

log = logging.getLogger(__name__)

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
        self.edits = edit_advice(RunDir(model_dir) if model_dir else None)
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
                cond = [self.reward_model.as_conditioning(rows[i][0]) for i in idx] if has_summary else None
                scores = self.reward_model.score(cond, [rows[i][1] for i in idx], [rows[i][2] for i in idx])
                for i, s in zip(idx, scores.float().tolist()):
                    out[i] = s
        return out


def edit_advice(run: RunDir | None) -> dict:
    """How a person's edit is best saved for this run's reward model: as written, or restated by its
    summarizer first, whichever the run's edit-following check (eval/checks) found followed more often
    on its validation wordings (on the test wordings in checks written before it had them)."""
    check = run.checks_dir / "edit_following.json" if run else None
    if check is None or not check.is_file():
        return {"default": "as written", "reason": "No edit-following check for this model yet: your words are "
                                                    "saved as you write them (run plusrl eval to check)."}
    checked = json.loads(check.read_text())
    checked = checked.get("validation", checked)  # the wordings designs are chosen on, when the check has them
    written, restated = checked["edit_following"], checked.get("restated", {}).get("edit_following")
    best = "restated" if restated is not None and restated > written else "as written"
    shown = f"{100 * written:.0f}% as written" + ("" if restated is None else f", {100 * restated:.0f}% restated")
    return {"default": best, "as_written": written, "restated": restated,
            "reason": f"This model follows hand-written preference statements {shown} in its check: "
                      + ("let the model restate your edit." if best == "restated" else "save your words as they are.")}


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


def _retry_after(seconds: float) -> list[tuple[bytes, bytes]]:
    return [(b"retry-after", str(max(1, round(seconds + 0.5))).encode())]


def create_app(store: Store, models: Models, admin_token: str | None = None,
               limits: ServiceLimits | None = None) -> FastAPI:
    """The service: authentication before any body is read, the routers of `routes`, the page."""
    admin_token = admin_token or os.environ.get("PLUSRL_ADMIN_TOKEN") or secrets.token_urlsafe(24)
    limits = limits or ServiceLimits()
    service = Service(store, models, limits, ScoreBatcher(models.score))

    @asynccontextmanager
    async def lifespan(_app):
        service.batcher.task = asyncio.create_task(service.batcher.run())
        yield
        service.batcher.task.cancel()

    # /docs and /redoc would load their scripts from a CDN; the schema is served at /openapi.json.
    app = FastAPI(title="plusrl personalization service", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Users see, edit and own the text summary that personalizes the reward model.")
    app.state.admin_token, app.state.service = admin_token, service
    app.add_middleware(RequestGuard, limits=limits, authenticate=partial(_authenticate, service, admin_token))
    for router in ROUTERS:
        app.include_router(router)

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

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return (Path(__file__).parent / "static" / "index.html").read_text()

    @app.get("/api/health")
    def health() -> dict:
        return {"ok": True, "trained_models": models.trained, "edits": models.edits}

    return app


def _authenticate(service: Service, admin_token: str, scope) -> tuple[int, str, list] | None:
    """Runs on the headers alone, before any body is read (see RequestGuard): a refusal as (status,
    reason, headers), or None, with the request's Principal in its scope."""
    path, method, limits = scope["path"], scope["method"], service.limits
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
        if not is_admin and (wait := service.registrations.acquire(client)):
            return 429, f"too many new accounts from {client}: retry later", _retry_after(wait)
        return None
    if token is None:
        return 401, "send 'Authorization: Bearer <token>'", []
    user_id = None if is_admin else service.store.user_for_token(token.decode("latin-1"))
    if not is_admin and user_id is None:
        return 401, "unknown token", []
    scope.setdefault("state", {})["principal"] = Principal(user_id)
    if method in ("POST", "PUT", "DELETE") and not path.endswith(("/score", "/summary/generate")) and not is_admin:
        if wait := service.writes.acquire(user_id):
            return 429, "too many writes: slow down", _retry_after(wait)
    return None
