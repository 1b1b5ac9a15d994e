"""A local OpenAI-compatible chat completions server, for testing LLM workflows.

``ProviderDouble`` is a small ASGI app that answers ``POST /v1/chat/completions`` the way the
``openai`` SDK expects, and enforces a capacity the way a provider does: at most
``max_concurrent`` requests at once and/or ``rate`` requests per ``per`` seconds. A request
above the capacity is answered ``429`` with a ``Retry-After`` header (seconds) and an
OpenAI-style error body, which the SDK raises as ``openai.RateLimitError``. Every request is
logged (arrival time, requests in flight, status, the hint sent), so a test can check what the
provider saw: counts of 429s, the most requests in any window, when retries arrived.

``serve(double)`` runs it under uvicorn on ``127.0.0.1`` and a free port, in a background
thread, and yields the base URL to give the SDK::

    from rh_parallel.provider_double import ProviderDouble, serve

    double = ProviderDouble(max_concurrent=4, rate=10, per=1.0, latency=0.05)
    with serve(double) as base_url:              # "http://127.0.0.1:<port>/v1"
        client = openai.AsyncOpenAI(base_url=base_url, api_key="test", max_retries=0)
        ...                                      # run the workflow
    assert double.count(429) == 0

Needs ``uvicorn`` to serve (and the ``openai`` SDK to call it): ``pip install
'rh-parallel[llm]'``. The app alone (``ProviderDouble``) needs nothing but the standard library.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import math
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from rh_parallel.execution.checks import check_count, check_real, check_seconds, show

__all__ = ["ProviderDouble", "RequestRecord", "serve"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Reply = Callable[[dict[str, Any]], str]

CHAT_PATH = "/v1/chat/completions"
MODELS_PATH = "/v1/models"


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request as the double saw it.

    ``arrived`` and ``finished`` are ``time.monotonic()`` readings (the same clock as the
    test's, in the same process): when the whole request had arrived, and when its answer was
    ready to send. ``in_flight`` is the number of accepted requests being served when it
    arrived (itself not counted), ``status`` the HTTP status answered (200; 429 above the
    capacity; 500 when ``reply`` raised; 400, 404, 405 for a request the double does not
    take; 499 for one the server stopped before answering), ``retry_after`` the
    ``Retry-After`` hint a 429 sent (seconds), ``model`` and ``prompt`` (the last user message)
    what it asked for, so a test can follow one caller's retries.
    """

    arrived: float
    finished: float
    in_flight: int
    status: int
    path: str
    retry_after: float | None = None
    model: str | None = None
    prompt: str | None = None


def _echo(request: dict[str, Any]) -> str:
    prompt = _prompt(request)
    return f"echo: {prompt}" if prompt is not None else "echo"


def _prompt(request: dict[str, Any]) -> str | None:
    """The text of the last user message, if there is one."""
    messages = request.get("messages")
    if not isinstance(messages, list):
        return None
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):  # content parts: keep the text ones
                return " ".join(
                    str(part.get("text", "")) for part in content if isinstance(part, dict)
                )
    return None


def _tokens(text: str) -> int:
    """A rough token count (words): good enough for a ``usage`` block."""
    return len(text.split())


def _seconds_header(seconds: float) -> str:
    """``seconds`` rounded up to the millisecond, as ``Retry-After`` (the SDK and
    ``rh_parallel``'s ``retry_after()`` read fractional seconds)."""
    millis = math.ceil(seconds * 1000 - 1e-9)
    return f"{millis // 1000}.{millis % 1000:03d}".rstrip("0").rstrip(".")


class ProviderDouble:
    """An OpenAI-compatible chat completions endpoint with a capacity, as an ASGI app.

    - ``max_concurrent``: requests served at once; one more is answered 429.
    - ``rate`` per ``per`` seconds: requests accepted in any sliding window of ``per``
      seconds; one more is answered 429. Only accepted requests count.
    - ``latency``: seconds each accepted request takes before its answer.
    - ``retry_after``: the hint 429 answers send, in seconds; ``None`` (default) computes it:
      until the rate's window has room again, or until the first request in flight is due to
      finish. ``retry_after_header=False`` sends no hint at all.
    - ``reply``: the answer's text from the request body (a dict); by default
      ``"echo: <last user message>"``. A ``reply`` that raises is answered 500 (the SDK's
      ``InternalServerError``): a way to script a provider's failures.

    ``requests`` is the log (in arrival order), ``count(status)`` counts it, ``reset()``
    clears it; ``peak_in_flight`` is the most requests served at once. Reading them is safe
    while the server runs in another thread.
    """

    def __init__(
        self,
        *,
        max_concurrent: int | None = None,
        rate: float | None = None,
        per: float = 1.0,
        latency: float = 0.0,
        retry_after: float | None = None,
        retry_after_header: bool = True,
        reply: Reply | None = None,
    ) -> None:
        if max_concurrent is not None:
            max_concurrent = check_count(
                "ProviderDouble", "max_concurrent", max_concurrent, "requests served at once"
            )
        if rate is not None:
            number = check_real("ProviderDouble", "rate", rate, "a finite number > 0", "10")
            if not (math.isfinite(number) and number > 0):
                raise ValueError(
                    f"ProviderDouble(rate={show(rate)}) must be a finite number > 0; "
                    "pass e.g. rate=10"
                )
            rate = number
        self.max_concurrent = max_concurrent
        self.rate = rate
        self.per = check_seconds("ProviderDouble", "per", per, positive=True, example="1.0")
        self.latency = check_seconds("ProviderDouble", "latency", latency, example="0.05")
        self.retry_after = (
            None
            if retry_after is None
            else check_seconds("ProviderDouble", "retry_after", retry_after, example="1.0")
        )
        self.retry_after_header = bool(retry_after_header)
        if reply is not None and not callable(reply):
            raise TypeError(
                f"ProviderDouble(reply={show(reply)}) must be a function of the request body "
                "returning the answer's text"
            )
        self.reply: Reply = reply or _echo
        self._lock = threading.Lock()
        self._log: list[RequestRecord] = []
        self._accepted: collections.deque[float] = collections.deque()  # in the rate window
        self._due: dict[int, float] = {}  # requests in flight: when each is due to finish
        self._next = 0
        self._peak = 0

    # -- the log ----------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request answered so far, in arrival order."""
        with self._lock:
            return sorted(self._log, key=lambda r: r.arrived)

    def count(self, status: int | None = None) -> int:
        """How many requests were answered with ``status`` (all of them when ``None``)."""
        with self._lock:
            return sum(1 for r in self._log if status is None or r.status == status)

    @property
    def peak_in_flight(self) -> int:
        """The most accepted requests served at once."""
        with self._lock:
            return self._peak

    @property
    def in_flight(self) -> int:
        """Accepted requests being served now."""
        with self._lock:
            return len(self._due)

    def reset(self) -> None:
        """Start afresh: forget the log, the peak and the rate window (e.g. after a warm-up
        call). Requests still in flight stay counted."""
        with self._lock:
            self._log.clear()
            self._accepted.clear()
            self._peak = len(self._due)

    def __repr__(self) -> str:
        return (
            f"ProviderDouble(max_concurrent={self.max_concurrent}, rate={self.rate}, "
            f"per={self.per:g}, latency={self.latency:g})"
        )

    # -- ASGI -------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise RuntimeError(f"ProviderDouble serves HTTP only, not {scope['type']!r}")
        body = await _read_body(receive)
        arrived = time.monotonic()
        method, path = scope["method"], scope["path"]
        route = path.rstrip("/")
        if route == CHAT_PATH and method == "POST":
            await self._chat(send, arrived, path, body)
        elif route == MODELS_PATH and method == "GET":
            self._record(RequestRecord(arrived, time.monotonic(), self.in_flight, 200, path))
            await _send_json(send, 200, {"object": "list", "data": []})
        elif route == CHAT_PATH:
            await self._refuse(send, arrived, path, 405, f"use POST, not {method}")
        else:
            await self._refuse(send, arrived, path, 404, f"no route {method} {path}")

    async def _chat(self, send: Send, arrived: float, path: str, body: bytes) -> None:
        try:
            request = json.loads(body)
            if not isinstance(request, dict):
                raise ValueError("the body is not a JSON object")
        except ValueError as exc:
            await self._refuse(send, arrived, path, 400, f"invalid JSON: {exc}")
            return
        model = request.get("model")
        model = model if isinstance(model, str) else None
        prompt = _prompt(request)
        if not isinstance(request.get("messages"), list) or model is None:
            problem = "'model' and 'messages' are required"
            await self._refuse(send, arrived, path, 400, problem, model=model, prompt=prompt)
            return
        if request.get("stream"):
            problem = "the provider double does not stream; call without stream=True"
            await self._refuse(send, arrived, path, 400, problem, model=model, prompt=prompt)
            return
        ticket, in_flight, wait = self._admit(arrived)
        if ticket is None:
            header = _seconds_header(self.retry_after if self.retry_after is not None else wait)
            hint = float(header)  # as sent: what the client reads
            sent = hint if self.retry_after_header else None
            error = _error(
                "Rate limit reached for requests: the provider double is at capacity "
                f"({self._capacity()}); please try again in {hint:.3f}s.",
                "requests",
                "rate_limit_exceeded",
            )
            headers = [(b"retry-after", header.encode())] if self.retry_after_header else []
            self._record(
                RequestRecord(arrived, time.monotonic(), in_flight, 429, path, sent, model, prompt)
            )
            await _send_json(send, 429, error, headers)
            return
        status = 499  # not answered: the server stopped while the request waited
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            answer = _completion(model, request, self.reply(request))
            status = 200
        except Exception as exc:  # the user's reply failed: a server error, as a provider's
            status = 500
            answer = _error(
                f"the provider double's reply raised {type(exc).__name__}: {exc}",
                "server_error",
                "internal_error",
            )
        finally:
            # logged, and its slot freed, before the answer is sent: a client that has the
            # answer may send its next request at once
            with self._lock:
                del self._due[ticket]
                self._log.append(
                    RequestRecord(
                        arrived, time.monotonic(), in_flight, status, path, None, model, prompt
                    )
                )
        await _send_json(send, status, answer)

    def _admit(self, now: float) -> tuple[int | None, int, float]:
        """Accept a request arriving ``now`` (its ticket) or refuse it (``None`` and the
        seconds until there is room); also the requests in flight at its arrival."""
        with self._lock:
            in_flight = len(self._due)
            window = self._accepted
            while window and window[0] <= now - self.per:
                window.popleft()
            waits = []
            if self.rate is not None and len(window) + 1 > self.rate:
                waits.append(window[0] + self.per - now)
            if self.max_concurrent is not None and in_flight >= self.max_concurrent:
                waits.append(min(self._due.values()) - now)
            if waits:
                return None, in_flight, max(0.001, *waits)
            ticket = self._next
            self._next += 1
            self._due[ticket] = now + self.latency
            self._peak = max(self._peak, len(self._due))
            if self.rate is not None:
                window.append(now)
            return ticket, in_flight, 0.0

    def _capacity(self) -> str:
        parts = []
        if self.max_concurrent is not None:
            parts.append(f"{self.max_concurrent} at once")
        if self.rate is not None:
            parts.append(f"{self.rate:g} per {self.per:g}s")
        return ", ".join(parts)

    async def _refuse(
        self,
        send: Send,
        arrived: float,
        path: str,
        status: int,
        message: str,
        *,
        model: str | None = None,
        prompt: str | None = None,
    ) -> None:
        record = RequestRecord(
            arrived, time.monotonic(), self.in_flight, status, path, None, model, prompt
        )
        self._record(record)
        await _send_json(send, status, _error(message, "invalid_request_error", None))

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self._log.append(record)


def _error(message: str, kind: str, code: str | None) -> dict[str, Any]:
    """An OpenAI-style error body."""
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _completion(model: str, request: dict[str, Any], text: str) -> dict[str, Any]:
    """A chat completion answering ``request`` with ``text``, as the API returns it."""
    prompt_tokens = sum(
        _tokens(str(m.get("content", ""))) for m in request["messages"] if isinstance(m, dict)
    )
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": _tokens(text),
            "total_tokens": prompt_tokens + _tokens(text),
        },
    }


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _send_json(
    send: Send, status: int, body: dict[str, Any], headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


@contextlib.contextmanager
def serve(double: ProviderDouble | None = None, *, startup_timeout: float = 10.0) -> Iterator[str]:
    """Serve ``double`` (a new ``ProviderDouble()`` if not given: no capacity limit) under
    uvicorn on ``127.0.0.1`` and a free port, in a background thread; yields the base URL for
    the SDK (``http://127.0.0.1:<port>/v1``) and shuts the server down on exit.
    """
    try:
        import uvicorn
    except ImportError as exc:  # pragma: no cover - the test extra installs it
        raise ImportError(
            "rh_parallel.provider_double.serve() needs uvicorn: pip install 'rh-parallel[llm]'"
        ) from exc
    app = double if double is not None else ProviderDouble()
    # proto named: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and without
    # it every answer waits ~40 ms for a delayed ACK (Nagle)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        loop="asyncio",
        http="h11",
        ws="none",
        lifespan="on",
        log_config=None,  # leave the process's logging as it is
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # reported by serve() in the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"provider-double:{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if failure or not thread.is_alive():
                raise RuntimeError("the provider double's server did not start") from (
                    failure[0] if failure else None
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the provider double's server did not start within {startup_timeout}s"
                )
            time.sleep(0.005)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=startup_timeout)
        sock.close()
