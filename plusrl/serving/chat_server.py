"""A small OpenAI-compatible `/v1/chat/completions` server in front of any chat backend.

    plusrl chat-server --model smollm2-135m --port 8001

It lets tools that speak the OpenAI API (including plusrl's own `openai` backend) use a
model running here, and it is the real server the HTTP backend's tests talk to.
"""

from __future__ import annotations

import time
import uuid
from typing import Literal

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from plusrl.models.backends import ChatBackend, ChatRequest


class Message(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class Completion(BaseModel):
    model: str = ""
    messages: list[Message] = Field(min_length=1)
    max_tokens: int = Field(default=64, ge=1, le=4096)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)


def create_chat_app(backend: ChatBackend, model_name: str = "") -> FastAPI:
    app = FastAPI(title="plusrl chat completions")

    @app.post("/v1/chat/completions")
    async def complete(body: Completion) -> dict:
        request = ChatRequest(tuple((m.role, m.content) for m in body.messages), body.max_tokens, body.temperature)
        (reply,) = await run_in_threadpool(backend.complete, [request])
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.model or model_name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
        }

    return app
