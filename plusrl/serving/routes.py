"""The service's HTTP API, one router per concern: accounts, context, summary, score.

Each route reads the service's state (the store, the models, the limits) through the `service`
dependency, and the user it acts for through `owner`: a token reaches only its own user's data,
the admin token everyone's. `plusrl.serving.app.create_app` puts the routers together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, Field, StrictInt, TypeAdapter, ValidationError

from plusrl.data.schema import ContextItem
from plusrl.serving.guard import RateLimiter, ServiceLimits, TooManyRequests
from plusrl.serving.store import NotFound, Store, SummaryVersion
from plusrl.serving.summary_worker import SummarizerUnavailable

MAX_TEXT = 20_000  # characters per context item, summary or response


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


@dataclass
class Service:
    """What the routes share: the store, the models and the limits, with their rate limiters."""

    store: Store
    models: Any  # plusrl.serving.app.Models (or a stand-in with the same methods, in tests)
    limits: ServiceLimits
    batcher: Any  # plusrl.serving.app.ScoreBatcher
    generating: set[str] = field(default_factory=set)
    """Users whose summary is being written now (one each)."""

    def __post_init__(self):
        self.registrations = RateLimiter(self.limits.registrations_per_minute)
        self.writes = RateLimiter(self.limits.writes_per_minute)
        self.generations = RateLimiter(self.limits.generations_per_minute)

    def may_generate(self, user_id: str) -> None:
        """One generation per user at a time, a bounded queue, and a per-user rate."""
        if user_id in self.generating:
            raise HTTPException(429, "a summary is already being written for you; wait for it",
                                headers={"Retry-After": "10"})
        if len(self.generating) >= self.limits.max_queued_generations:
            raise HTTPException(429, "the summarizer is busy: retry in a minute", headers={"Retry-After": "30"})
        if wait := self.generations.acquire(user_id):
            raise TooManyRequests(wait, "summary generations")

    async def write_summary(self, user_id: str, items: list[dict], note: str) -> dict:
        """The summarizer's summary of `items`, saved as the user's newest version."""
        self.generating.add(user_id)
        try:
            text = await self.models.summarize(user_id, items)
        except SummarizerUnavailable as error:
            raise HTTPException(503, str(error), headers={"Retry-After": "60"}) from None
        finally:
            self.generating.discard(user_id)
        return _version(self.store.add_summary(user_id, text, "model", note=note))


def service(request: Request) -> Service:
    return request.app.state.service


def principal(request: Request) -> Principal:
    return request.state.principal  # set by authentication; every /api/ route but health has one


Svc = Annotated[Service, Depends(service)]
Who = Annotated[Principal, Depends(principal)]


def owner(user_id: str, who: Who, svc: Svc) -> str:
    """A user reaches only their own data; the admin reaches everyone's."""
    if not who.is_admin and who.user_id != user_id:
        raise HTTPException(403, "this token belongs to another user")
    try:
        svc.store.user(user_id)
    except NotFound:
        raise HTTPException(404, f"no user {user_id!r}") from None
    return user_id


Owner = Annotated[str, Depends(owner)]
Offset = Annotated[int, Query(ge=0, le=2**31 - 1)]
Limit = Annotated[int, Query(ge=1, le=ServiceLimits.page_size)]

# -- accounts -------------------------------------------------------------------------------------

accounts = APIRouter(prefix="/api", tags=["accounts"])


@accounts.post("/users", status_code=201)
def create_user(body: NewUser, svc: Svc) -> dict:
    user_id, token = svc.store.create_user(body.name)
    return {"user_id": user_id, "token": token, "note": "keep this token: it is shown once"}


@accounts.get("/users")
def list_users(who: Who, svc: Svc) -> list[dict]:
    if not who.is_admin:
        raise HTTPException(403, "listing users needs the admin token")
    return svc.store.users()


@accounts.get("/me")
def me(who: Who) -> dict:
    return {"user_id": who.user_id, "admin": who.is_admin}


@accounts.delete("/users/{user_id}")
def delete_account(user_id: Owner, svc: Svc) -> dict:
    """The account and everything in it (context, summaries, token), in one transaction."""
    svc.store.delete_user(user_id)
    return {"deleted": user_id}


@accounts.post("/users/{user_id}/token")
def rotate_token(user_id: Owner, svc: Svc) -> dict:
    return {"token": svc.store.rotate_token(user_id), "note": "the old token no longer works"}


@accounts.get("/users/{user_id}/export")
def export(user_id: Owner, svc: Svc) -> JSONResponse:
    return JSONResponse(svc.store.export(user_id),
                        headers={"Content-Disposition": f'attachment; filename="plusrl-{user_id}.json"'})


# -- context --------------------------------------------------------------------------------------

context = APIRouter(prefix="/api/users/{user_id}/context", tags=["context"])


@context.post("")
def add_context(user_id: Owner, body: ContextIn, svc: Svc) -> dict:
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
    return {"n_items": svc.store.add_context(user_id, items)}


@context.get("")
def get_context(user_id: Owner, svc: Svc, offset: Offset = 0, limit: Limit = ServiceLimits.page_size) -> JSONResponse:
    """Oldest first, one page at a time; X-Total-Count says how many there are."""
    return JSONResponse(svc.store.context(user_id, offset, limit),
                        headers={"X-Total-Count": str(svc.store.count_context(user_id))})


@context.delete("")
def clear_context(user_id: Owner, svc: Svc, drop_model_summaries: bool = False) -> dict:
    """Delete the context; with drop_model_summaries=true also the summaries the model wrote from it."""
    return {"n_items": 0, "summaries_dropped": svc.store.clear_context(user_id, drop_model_summaries)}


# -- summary --------------------------------------------------------------------------------------

summary = APIRouter(prefix="/api/users/{user_id}/summary", tags=["summary"])


@summary.post("/generate")
async def generate_summary(user_id: Owner, svc: Svc) -> dict:
    svc.may_generate(user_id)
    items = svc.store.newest_context(user_id, svc.models.context_budget_bytes)
    if not items:
        raise HTTPException(409, "no context yet: add conversations or preference pairs first")
    n = svc.store.count_context(user_id)
    note = f"from the newest {len(items)} of {n} context items" if len(items) < n else f"from {n} context items"
    return await svc.write_summary(user_id, items, note)


@summary.post("/restate")
async def restate_summary(user_id: Owner, body: SummaryIn, svc: Svc) -> dict:
    """Save the user's own words, then the summarizer's restatement of them, which the reward model
    reads as it reads the summaries it was trained on (a small reward model can take "I can't stand
    cats" for a mention of cats). Both are versions the user sees; revert keeps the words alone."""
    svc.may_generate(user_id)
    own = svc.store.add_summary(user_id, body.text, "user", note="edited")
    restated = await svc.write_summary(user_id, [{"kind": "text", "text": body.text}],
                                       note=f"your words of version {own.version}, restated by the summarizer")
    return {"yours": _version(own), "restated": restated}


@summary.get("")
def get_summary(user_id: Owner, svc: Svc) -> dict:
    return {"summary": _version(svc.store.summary(user_id))}


@summary.put("")
def edit_summary(user_id: Owner, body: SummaryIn, svc: Svc) -> dict:
    return _version(svc.store.add_summary(user_id, body.text, "user", note="edited"))


@summary.get("/history")
def history(user_id: Owner, svc: Svc, offset: Offset = 0, limit: Limit = ServiceLimits.page_size) -> list[dict]:
    """Newest first, one page at a time."""
    return [_version(v) for v in svc.store.history(user_id, offset, limit)]


@summary.delete("/history")
def prune_history(user_id: Owner, svc: Svc, keep: Annotated[int, Query(ge=1, le=2**31 - 1)]) -> dict:
    """Keep only the newest `keep` versions."""
    return {"dropped": svc.store.prune_history(user_id, keep)}


@summary.post("/revert")
def revert(user_id: Owner, body: RevertIn, svc: Svc) -> dict:
    try:
        return _version(svc.store.revert(user_id, body.version))
    except NotFound as error:
        raise HTTPException(404, str(error)) from None


# -- predictions ----------------------------------------------------------------------------------

scoring = APIRouter(prefix="/api/users/{user_id}", tags=["score"])


@scoring.post("/score")
async def score(user_id: Owner, body: ScoreIn, svc: Svc) -> dict:
    """Rewards of each response with the user's summary and without; rankings of both."""
    text = body.summary if body.summary is not None else getattr(svc.store.summary(user_id), "text", None)
    rows = [(text, body.prompt, r) for r in body.responses] if text else []
    rows += [(None, body.prompt, r) for r in body.responses]
    scores = await svc.batcher.score(rows)
    n = len(body.responses)
    with_summary = scores[:n] if text else None
    without = scores[-n:]

    def ranking(values):
        return sorted(range(n), key=lambda i: -values[i])

    return {"summary_used": text, "with_summary": with_summary, "without_summary": without,
            "ranking_with_summary": ranking(with_summary) if with_summary else None,
            "ranking_without_summary": ranking(without)}


ROUTERS = (accounts, context, summary, scoring)
