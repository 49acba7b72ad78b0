"""What stands between the network and the service: body limits, authentication before any body
is read, rate limits and security headers.

A pure ASGI middleware, so that it acts before FastAPI reads and parses a request body: a
request that is too large or carries no valid token costs the server its headers only.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

TARPITTED = {401, 413, 429}  # refusals a flooding client collects; answered after a pause

SECURITY_HEADERS = [
    # the page loads nothing from elsewhere: its script and style are inline
    (b"content-security-policy", b"default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                                 b"connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
                                 b"form-action 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


@dataclass(frozen=True)
class ServiceLimits:
    """Operator settings of `plusrl serve` that bound what one client can cost the service."""

    max_body_bytes: int = 1_000_000
    """Largest request body accepted; larger ones get 413 before a byte of them is parsed."""
    registration: Literal["open", "closed", "admin"] = "open"
    """open: anyone may create an account; admin: only with the admin token; closed: nobody."""
    registrations_per_minute: float = 30
    """Accounts created per minute per client address (open registration)."""
    writes_per_minute: float = 120
    """Context, summary and account writes per minute per user (bursts of up to this many)."""
    generations_per_minute: float = 2
    """Summary generations per minute per user; one at a time per user in any case. A generation
    takes the summarizer tens of seconds on a CPU, and it shares the cores with scoring."""
    max_queued_generations: int = 8
    """Generations waiting for the summarizer at once, over all users; more get 429."""
    page_size: int = 100
    """Most context items or summary versions returned by one GET."""
    refusal_delay_s: float = 1.0
    """Refusals (401, 413, 429) are sent after this pause (a tarpit). A client that floods waits
    for each answer before its next request, so it cannot turn our fast refusals into a flood of
    work; the pause costs the server a sleeping coroutine, not CPU. Normal clients never see it."""
    max_connections: int = 1000
    """Connections served at once (uvicorn's limit_concurrency); more are answered 503 at once."""

    def __post_init__(self):
        if self.registration not in ("open", "closed", "admin"):
            raise ValueError(f"registration must be open, closed or admin, not {self.registration!r}")
        if self.max_body_bytes < 1024:
            raise ValueError("max_body_bytes below 1 KiB would refuse ordinary requests")


class RateLimiter:
    """Token buckets, one per key: `rate` actions per minute, bursts of up to `rate`."""

    def __init__(self, per_minute: float, clock: Callable[[], float] = time.monotonic):
        self.capacity, self.refill_per_s, self.clock = per_minute, per_minute / 60.0, clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str) -> float:
        """Take one token for `key`: 0.0 if allowed, else the seconds until one is free."""
        with self._lock:
            now = self.clock()
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.refill_per_s)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                if len(self._buckets) > 100_000:  # forget full buckets: memory bounded by active keys
                    self._buckets = {k: v for k, v in self._buckets.items() if v[0] < self.capacity}
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.refill_per_s


class TooManyRequests(Exception):
    def __init__(self, retry_after_s: float, what: str):
        super().__init__(f"too many {what}: retry in {math.ceil(retry_after_s)} s")
        self.retry_after_s = retry_after_s


def error_response(status: int, detail: str, headers: list[tuple[bytes, bytes]] = ()):
    body = json.dumps({"detail": detail}).encode()
    return status, [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                    *headers], body


class RequestGuard:
    """ASGI middleware. In order, before the app sees a request:
    1. a body over `max_body_bytes` (by Content-Length, or counted as it streams) → 413;
    2. a body that is not JSON (a cross-site form or `text/plain` post) → 415;
    3. `authenticate(scope)` → a status and message to refuse with, or None to go on
       (it runs on headers alone, so an unauthenticated client cannot make us read its body);
    and on the way out it adds the security headers to every response, and holds back refusals
    (401, 413, 429, wherever they come from) for `refusal_delay_s`.
    """

    def __init__(self, app, limits: ServiceLimits, authenticate: Callable[[dict], tuple[int, str, list] | None]):
        self.app, self.limits, self.authenticate = app, limits, authenticate

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                if message["status"] in TARPITTED and self.limits.refusal_delay_s > 0:
                    await asyncio.sleep(self.limits.refusal_delay_s)
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        refusal = self._check_headers(scope) or self.authenticate(scope)
        if refusal is not None:
            return await self._refuse(send_with_headers, *refusal)

        received, started = 0, False

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limits.max_body_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send_with_headers(message)

        try:
            await self.app(scope, counted_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await self._refuse(send_with_headers, 413, self._too_large())

    def _check_headers(self, scope) -> tuple[int, str] | None:
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limits.max_body_bytes):
            return 413, self._too_large()
        has_body = (length not in (None, b"0")) or b"transfer-encoding" in headers
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if has_body and content_type != b"application/json":
            return 415, "send the body as JSON (Content-Type: application/json)"
        return None

    def _too_large(self) -> str:
        return f"request body over the limit of {self.limits.max_body_bytes} bytes"

    @staticmethod
    async def _refuse(send, status: int, detail: str, headers: list[tuple[bytes, bytes]] = ()):
        status, all_headers, body = error_response(status, detail, headers)
        await send({"type": "http.response.start", "status": status, "headers": all_headers})
        await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(Exception):
    pass
