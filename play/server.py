"""The player's web app: the page (this package's static files only) and one WebSocket per tab.

WebSocket protocol. Client -> server, JSON text (at most MAX_TEXT_BYTES):
    {"type": "step", "action": "RIGHT"}                   generate one frame
    {"type": "start", "game": G, "episode_id": E, "frame": F}   new start (missing keys: drawn)
    {"type": "reset"}                                     the same start again
    {"type": "settings", "maskgit_steps": N, "temperature": T}
    {"type": "gif"}                                       the session so far as a gif
  and binary: an uploaded start image (bounded by max_upload_bytes).
Server -> client: JSON text {"type": "hello" | "started" | "error", ...}; binary frames
(byte 0 = FRAME, byte 1 = size S, then S*S*3 RGB bytes) and gifs (byte 0 = GIF, then the file).

Model calls run one at a time in a worker thread (the CPU has few cores; batching tabs is not worth
the latency), so the event loop keeps serving every other tab meanwhile.

Only the player's own page gets in (Host and Origin checks, play/access.py), and a session that sends
nothing for `idle_timeout_s` is closed with a message, so silent connections cannot hold every slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send
from torch import nn

from common.errors import UserError
from envs.start_clips import StartPicker
from play.access import AccessPolicy
from play.images import MAX_UPLOAD_BYTES, UploadError, decode_upload
from play.session import PlaySession

STATIC_DPATH = Path(__file__).resolve().parent / "static"
MAX_TEXT_BYTES = 4096  # a control message is tiny
FRAME, GIF = 1, 2  # first byte of a binary message from the server


@dataclass
class PlayerSettings:
    model: nn.Module  # a loaded genie_redux(_guided) model, shared by every session
    picker: StartPicker  # start clips from the dataset
    num_prime_frames: int
    maskgit_steps: int
    temperature: float
    max_sessions: int = 4  # tabs playing at once; one more is told to close another
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    bound_host: str = "127.0.0.1"  # the host= it listens on: requests for other hosts are refused
    bound_port: int = 0  # the port it listens on (its own page's origin)
    idle_timeout_s: float = 300.0  # a session that sends nothing for this long is closed, freeing its slot
    precision: str = "auto"  # world-model inference: auto (bf16 autocast on CUDA) | fp32 | bf16


def frame_message(frame: np.ndarray) -> bytes:
    """uint8 [S, S, 3] -> FRAME, S, RGB bytes."""
    return bytes([FRAME, frame.shape[0]]) + np.ascontiguousarray(frame).tobytes()


def games_catalogue(picker: StartPicker) -> list[dict[str, Any]]:
    """What the start chooser offers: each game, its actions and its episodes' ids and lengths."""
    return [
        {
            "name": game,
            "action_names": list(picker.action_names(game)),
            "episodes": [{"id": r.episode_id, "num_frames": r.num_frames} for r in picker.episodes[game]],
        }
        for game in picker.games
    ]


class AccessMiddleware:
    """Refuses, before any route runs, HTTP requests for another Host (DNS rebinding) and WebSockets
    from another page's Origin (cross-site hijacking): play/access.py says why both matter."""

    def __init__(self, app: ASGIApp, policy: AccessPolicy) -> None:
        self.app, self.policy = app, policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        host = headers.get("host")
        if scope["type"] == "http" and not self.policy.allows_host(host):
            refusal = (
                f"this player answers only for the host it listens on ({self.policy.bound_host}) or "
                f"localhost / 127.0.0.1 / [::1], not for Host {host!r}\n"
            )
            return await PlainTextResponse(refusal, status_code=403)(scope, receive, send)
        if scope["type"] == "websocket" and not self.policy.allows_origin(headers.get("origin"), host):
            await receive()  # the handshake's websocket.connect
            await send({"type": "websocket.close", "code": 1008})  # before accept: HTTP 403
            return None
        return await self.app(scope, receive, send)


def create_app(settings: PlayerSettings) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)  # no routes beyond the player's
    app.add_middleware(
        AccessMiddleware, policy=AccessPolicy.for_address(settings.bound_host, settings.bound_port)
    )
    model_lock = threading.Lock()
    sessions: set[int] = set()  # ids of the sessions playing now
    session_ids = itertools.count(1)
    catalogue = games_catalogue(settings.picker)

    @app.get("/")
    def index() -> FileResponse:
        return FileResponse(STATIC_DPATH / "index.html", headers={"Cache-Control": "no-store"})

    app.mount("/static", StaticFiles(directory=STATIC_DPATH), name="static")  # refuses paths outside it

    async def in_worker(function, *args):  # noqa: ANN001, ANN202
        def locked():  # noqa: ANN202
            with model_lock:
                return function(*args)

        return await asyncio.to_thread(locked)

    @app.websocket("/ws")
    async def play(websocket: WebSocket) -> None:
        await websocket.accept()
        if len(sessions) >= settings.max_sessions:
            await send_error(
                websocket, f"{settings.max_sessions} tabs are playing already: close one and reload"
            )
            await websocket.close(code=1013)
            return
        session = PlaySession(
            settings.model,
            settings.picker,
            settings.num_prime_frames,
            settings.maskgit_steps,
            settings.temperature,
            settings.precision,
        )
        session_id = next(session_ids)
        sessions.add(session_id)
        try:
            await websocket.send_text(json.dumps(hello(settings, catalogue, session_id, len(sessions))))
            await send_start(websocket, session, *await in_worker(session.start))
            while True:
                try:
                    message = await asyncio.wait_for(websocket.receive(), settings.idle_timeout_s)
                except TimeoutError:
                    idle = f"{settings.idle_timeout_s:g} s"
                    await send_error(websocket, f"closed after {idle} without input: reload the page to play")
                    await websocket.close(code=1000, reason=f"idle for {idle}")
                    break
                if message["type"] == "websocket.disconnect":
                    break
                await handle(websocket, session, message, in_worker, settings)
        except WebSocketDisconnect:
            pass
        except Exception as error:  # noqa: BLE001 (a failed session ends with a message, not a dropped socket)
            print(f"warning: session {session_id} failed: {type(error).__name__}: {error}", file=sys.stderr)
            with contextlib.suppress(Exception):
                await send_error(websocket, f"the server failed ({type(error).__name__}): reload the page")
                await websocket.close(code=1011)
        finally:
            sessions.discard(session_id)  # the tab is gone: its session (and its memory) with it

    app.state.sessions = sessions
    return app


def hello(
    settings: PlayerSettings, catalogue: list[dict[str, Any]], session_id: int, num_sessions: int
) -> dict[str, Any]:
    return {
        "type": "hello",
        "session": session_id,
        "num_sessions": num_sessions,
        "games": catalogue,
        "image_size": settings.picker.image_size,
        "num_prime_frames": settings.num_prime_frames,
        "settings": {"maskgit_steps": settings.maskgit_steps, "temperature": settings.temperature},
        "limits": {"upload_bytes": settings.max_upload_bytes},
    }


async def send_error(websocket: WebSocket, message: str) -> None:
    await websocket.send_text(json.dumps({"type": "error", "message": message}))


async def send_start(
    websocket: WebSocket, session: PlaySession, frame: np.ndarray, info: dict[str, Any]
) -> None:
    """'started' (where the session starts and its action names), then its first frame."""
    started = {"type": "started", **info, "action_names": list(session.action_names)}
    await websocket.send_text(json.dumps(started))
    await websocket.send_bytes(frame_message(frame))


async def handle(websocket, session: PlaySession, message: dict, in_worker, settings) -> None:  # noqa: ANN001
    """One client message; bad input is answered with an error message, never a closed socket."""
    try:
        if message.get("bytes") is not None:
            image = decode_upload(message["bytes"], settings.max_upload_bytes)
            frame, info = await in_worker(lambda: session.start(image=image))
            await send_start(websocket, session, frame, info)
            return
        text = message.get("text") or ""
        if len(text) > MAX_TEXT_BYTES:
            raise UploadError(f"control message of {len(text)} bytes refused (limit {MAX_TEXT_BYTES})")
        request = json.loads(text)
        kind = request.get("type") if isinstance(request, dict) else None
        if kind == "step":
            frame = await in_worker(session.step, str(request.get("action")))
            await websocket.send_bytes(frame_message(frame))
        elif kind in ("start", "reset"):
            if kind == "reset":
                frame, info = await in_worker(session.restart)
            else:
                frame_index = request.get("frame")
                frame_index = None if frame_index in (None, "") else int(frame_index)
                game, episode_id = request.get("game"), request.get("episode_id") or None
                frame, info = await in_worker(session.start, game, episode_id, frame_index)
            await send_start(websocket, session, frame, info)
        elif kind == "settings":
            session.set_options(int(request["maskgit_steps"]), float(request["temperature"]))
        elif kind == "gif":
            await websocket.send_bytes(bytes([GIF]) + await in_worker(session.gif))
        else:
            raise ValueError(f"unknown message type {kind!r}; use step, start, reset, settings or gif")
    except (UploadError, UserError, ValueError, KeyError, TypeError) as error:
        await send_error(websocket, str(error).splitlines()[0] if str(error) else type(error).__name__)
