"""A scripted OpenAI-compatible chat server on 127.0.0.1 for end-to-end tests (aiohttp, background thread).

Replies cycle through a fixed list; streaming sends one content chunk, a finish chunk and `data: [DONE]`.
Every request body is kept in `requests` (and appended to `record_to` as a JSON line, when given) so tests can
see what verifiers sent.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from pathlib import Path

from aiohttp import web

# Completions the scripted policy sends back: ordinary prose, a reasoning block, nothing, and odd input.
SCRIPTED_REPLIES = [
    "The little fox ran to the river and found a friend. They played with a red ball until the sun went down.",
    "<think>I should write a happy ending.</think>Mia smiled at Tom, and they walked home together, holding hands.",
    "",
    # non-ASCII (an em dash) that the canonical form keeps, so every stack must pass it through unchanged
    "Then the bird sang a song for everyone in the garden, and all the animals danced in the warm sun — all day.",
]


class ScriptedChatServer:
    def __init__(
        self, replies: list[str], model: str = "scripted-policy", record_to: Path | None = None
    ) -> None:
        self.replies = replies
        self.model = model
        self.requests: list[dict] = []
        self.record_to = record_to
        self._next_reply = itertools.cycle(replies)
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def start(self) -> ScriptedChatServer:
        started = threading.Event()
        threading.Thread(target=self._serve, args=(started,), daemon=True).start()
        if not started.wait(30):
            raise RuntimeError("the scripted chat server did not start")
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)

    def _serve(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        port = site._server.sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}/v1"
        started.set()
        self._loop.run_forever()

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": self.model, "object": "model"}]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        if self.record_to is not None:
            with self.record_to.open("a") as record:
                record.write(json.dumps(body) + "\n")
        reply = next(self._next_reply)
        ident, created = f"chatcmpl-{len(self.requests)}", int(time.time())
        usage = {"prompt_tokens": 10, "completion_tokens": max(1, len(reply.split())), "total_tokens": 0}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if not body.get("stream"):
            return web.json_response(
                {
                    "id": ident,
                    "object": "chat.completion",
                    "created": created,
                    "model": body.get("model", self.model),
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": reply},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": usage,
                }
            )
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)

        def chunk(delta: dict, finish: str | None, with_usage: bool = False) -> bytes:
            payload = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": body.get("model", self.model),
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            if with_usage:
                payload["usage"] = usage
            return f"data: {json.dumps(payload)}\n\n".encode()

        await response.write(chunk({"role": "assistant", "content": reply}, None))
        await response.write(chunk({}, "stop", with_usage=True))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response
