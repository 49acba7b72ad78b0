"""The personalization service: users see, edit and own their summary; predictions follow.

    plusrl serve --model-dir runs/pets-plus --db plusrl.db

The summarizer and the summary-conditioned reward model load once at start-up. Scoring
requests from concurrent clients are gathered into one reward-model batch. Context text is
only ever data passed to the summarizer; nothing in it is read as a command.
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

from fastapi import Depends, FastAPI, Header, HTTPException
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from plusrl.data.prompts import summary_conditioning
from plusrl.data.schema import ContextItem, UserContext
from plusrl.serving.store import NotFound, Store, SummaryVersion

log = logging.getLogger(__name__)

MAX_TEXT = 20_000  # characters per context item, summary or response


class Models:
    """The trained summarizer and reward model of a PLUS run (or the embedded defaults)."""

    def __init__(self, model_dir: str | None, dataset: str = "generic"):
        from plusrl.models.reward_model import RewardModel, RewardModelConfig
        from plusrl.models.summarizer import Summarizer, SummarizerConfig
        from plusrl.training.checkpoint import latest_checkpoint

        self.dataset, self.trained = dataset, model_dir is not None
        if model_dir:
            ckpt = latest_checkpoint(Path(model_dir))
            if ckpt is None or not (ckpt / "summarizer").is_dir():
                raise FileNotFoundError(f"{model_dir}: no PLUS checkpoint with a summarizer (train --method plus)")
            self.summarizer, self.reward_model = Summarizer.load(ckpt / "summarizer"), RewardModel.load(ckpt / "model")
        else:
            log.warning("no --model-dir: embedded summarizer and an untrained reward model (scores are not meaningful)")
            self.summarizer, self.reward_model = Summarizer(SummarizerConfig()), RewardModel(RewardModelConfig())
        self.reward_model.eval()
        self.lock = threading.Lock()  # one forward pass at a time on this machine's cores

    def summarize(self, user_id: str, items: list[dict]) -> str:
        user = UserContext.model_validate({"user_id": user_id, "context": items})
        with self.lock:
            return self.summarizer.summarize([user], self.dataset)[0]

    def score(self, rows: list[tuple[str | None, str, str]]) -> list[float]:
        """(summary or None, prompt, response) → reward; None scores without a summary."""
        import torch

        out = [0.0] * len(rows)
        with self.lock, torch.no_grad():
            for has_summary in (True, False):
                idx = [i for i, row in enumerate(rows) if (row[0] is not None) == has_summary]
                if not idx:
                    continue
                cond = [summary_conditioning(rows[i][0]) for i in idx] if has_summary else None
                scores = self.reward_model.score(cond, [rows[i][1] for i in idx], [rows[i][2] for i in idx])
                for i, s in zip(idx, scores.float().tolist()):
                    out[i] = s
        return out


class ScoreBatcher:
    """Gathers rows from concurrent requests for a few milliseconds and scores them together."""

    def __init__(self, score_fn, max_rows: int = 64, max_wait_s: float = 0.005):
        self.score_fn, self.max_rows, self.max_wait_s = score_fn, max_rows, max_wait_s
        self.queue: asyncio.Queue = asyncio.Queue()
        self.task: asyncio.Task | None = None

    async def score(self, rows: list[tuple]) -> list[float]:
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((rows, future))
        return await future

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            waiting = [await self.queue.get()]
            deadline = loop.time() + self.max_wait_s
            while sum(len(r) for r, _ in waiting) < self.max_rows and (left := deadline - loop.time()) > 0:
                try:
                    waiting.append(await asyncio.wait_for(self.queue.get(), left))
                except TimeoutError:
                    break
            rows = [row for r, _ in waiting for row in r]
            try:
                scores = await loop.run_in_executor(None, self.score_fn, rows)
            except Exception as error:  # noqa: BLE001 - each waiting request gets the error
                for _, future in waiting:
                    future.set_exception(error)
                continue
            start = 0
            for r, future in waiting:
                future.set_result(scores[start : start + len(r)])
                start += len(r)


# -- API models -------------------------------------------------------------------------------

Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]


class NewUser(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=200)] = "user"


class ContextIn(BaseModel):
    items: Annotated[list[dict], Field(min_length=1, max_length=100)]


class SummaryIn(BaseModel):
    text: Text


class RevertIn(BaseModel):
    version: int


class ScoreIn(BaseModel):
    prompt: Text
    responses: Annotated[list[Text], Field(min_length=1, max_length=32)]
    summary: Annotated[str, Field(max_length=MAX_TEXT)] | None = None
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


def create_app(store: Store, models: Models, admin_token: str | None = None) -> FastAPI:
    admin_token = admin_token or os.environ.get("PLUSRL_ADMIN_TOKEN") or secrets.token_urlsafe(24)
    batcher = ScoreBatcher(models.score)

    @asynccontextmanager
    async def lifespan(_app):
        batcher.task = asyncio.create_task(batcher.run())
        yield
        batcher.task.cancel()

    app = FastAPI(title="plusrl personalization service", lifespan=lifespan,
                  description="Users see, edit and own the text summary that personalizes the reward model.")
    app.state.admin_token = admin_token

    def principal(authorization: Annotated[str | None, Header()] = None) -> Principal:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise HTTPException(401, "send 'Authorization: Bearer <token>'")
        token = authorization[7:].strip()
        if secrets.compare_digest(token, admin_token):
            return Principal(None)
        user_id = store.user_for_token(token)
        if user_id is None:
            raise HTTPException(401, "unknown token")
        return Principal(user_id)

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

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return (Path(__file__).parent / "static" / "index.html").read_text()

    @app.get("/api/health")
    def health() -> dict:
        return {"ok": True, "trained_models": models.trained}

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

    @app.post("/api/users/{user_id}/context")
    def add_context(user_id: Owner, body: ContextIn) -> dict:
        items = []
        for i, raw in enumerate(body.items):
            try:
                item = TypeAdapter(ContextItem).validate_python(raw)
            except ValidationError as error:
                raise HTTPException(422, f"items[{i}]: {error.errors()[0]['msg']} at "
                                         f"{'.'.join(map(str, error.errors()[0]['loc']))}") from None
            if len(item.model_dump_json()) > MAX_TEXT:
                raise HTTPException(422, f"items[{i}]: longer than {MAX_TEXT} characters")
            items.append(item.model_dump())
        return {"n_items": store.add_context(user_id, items)}

    @app.get("/api/users/{user_id}/context")
    def get_context(user_id: Owner) -> list[dict]:
        return store.context(user_id)

    @app.delete("/api/users/{user_id}/context")
    def clear_context(user_id: Owner) -> dict:
        store.clear_context(user_id)
        return {"n_items": 0}

    @app.post("/api/users/{user_id}/summary/generate")
    async def generate_summary(user_id: Owner) -> dict:
        items = store.context(user_id)
        if not items:
            raise HTTPException(409, "no context yet: add conversations or preference pairs first")
        text = await asyncio.get_running_loop().run_in_executor(None, models.summarize, user_id, items)
        return _version(store.add_summary(user_id, text, "model", note=f"from {len(items)} context items"))

    @app.get("/api/users/{user_id}/summary")
    def get_summary(user_id: Owner) -> dict:
        return {"summary": _version(store.summary(user_id))}

    @app.put("/api/users/{user_id}/summary")
    def edit_summary(user_id: Owner, body: SummaryIn) -> dict:
        return _version(store.add_summary(user_id, body.text, "user", note="edited"))

    @app.get("/api/users/{user_id}/summary/history")
    def history(user_id: Owner) -> list[dict]:
        return [_version(v) for v in store.history(user_id)]

    @app.post("/api/users/{user_id}/summary/revert")
    def revert(user_id: Owner, body: RevertIn) -> dict:
        try:
            return _version(store.revert(user_id, body.version))
        except NotFound as error:
            raise HTTPException(404, str(error)) from None

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
