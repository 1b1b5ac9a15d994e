"""The provider double itself: an OpenAI-compatible server with a capacity, through the SDK."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from rh_parallel.execution.rate import is_rate_limited, retry_after
from rh_parallel.provider_double import ProviderDouble, RequestRecord, serve

openai = pytest.importorskip("openai")
pytest.importorskip("uvicorn")

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}]


def client(base_url: str) -> Any:
    return openai.AsyncOpenAI(base_url=base_url, api_key="test", max_retries=0)


def post(base_url: str, path: str, body: bytes, method: str = "POST") -> tuple[int, Any]:
    """A raw request (what the SDK would never send): the status and the JSON body."""
    request = urllib.request.Request(
        base_url.removesuffix("/v1") + path,
        data=body if method == "POST" else None,
        method=method,
        headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


async def test_a_chat_completion_through_the_sdk() -> None:
    double = ProviderDouble(latency=0.01)
    with serve(double) as base_url:
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        async with client(base_url) as sdk:
            completion = await sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert completion.object == "chat.completion" and completion.model == "gpt-4o-mini"
    (choice,) = completion.choices
    assert choice.index == 0 and choice.finish_reason == "stop"
    assert choice.message.role == "assistant" and choice.message.content == "echo: hello there"
    assert completion.usage is not None and completion.usage.prompt_tokens == 4
    assert completion.usage.total_tokens == 4 + 3
    (record,) = double.requests
    assert record.status == 200 and record.prompt == "hello there"
    assert record.model == "gpt-4o-mini" and record.in_flight == 0
    assert record.finished - record.arrived >= 0.009  # the latency
    assert record.path == "/v1/chat/completions" and record.retry_after is None


async def test_a_custom_reply_and_a_failing_one() -> None:
    def reply(request: dict[str, Any]) -> str:
        if request["messages"][-1]["content"] == "fail":
            raise RuntimeError("scripted outage")
        return f"{request['model']} says hi"

    double = ProviderDouble(reply=reply)
    with serve(double) as base_url:
        async with client(base_url) as sdk:
            completion = await sdk.chat.completions.create(model="m1", messages=MESSAGES)
            assert completion.choices[0].message.content == "m1 says hi"
            with pytest.raises(openai.InternalServerError, match="scripted outage"):
                await sdk.chat.completions.create(
                    model="m1", messages=[{"role": "user", "content": "fail"}]
                )
    assert [r.status for r in double.requests] == [200, 500]
    assert double.in_flight == 0  # the failed request gave its place back


async def test_above_max_concurrent_the_sdk_raises_rate_limit_error_with_the_hint() -> None:
    """Two served at once: of five sent together, three are refused with a Retry-After until
    the first in flight is due to finish; rh-parallel reads both the 429 and the hint."""
    double = ProviderDouble(max_concurrent=2, latency=0.5)  # long: all five arrive meanwhile
    with serve(double) as base_url:
        async with client(base_url) as sdk:
            outcomes = await asyncio.gather(
                *(
                    sdk.chat.completions.create(
                        model="m", messages=[{"role": "user", "content": str(n)}]
                    )
                    for n in range(5)
                ),
                return_exceptions=True,
            )
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(errors) == 3 and all(isinstance(e, openai.RateLimitError) for e in errors)
    for error in errors:
        assert error.status_code == 429 and is_rate_limited(error, ())
        assert error.code == "rate_limit_exceeded"
        hint = retry_after(error)
        assert hint is not None and 0 < hint <= 0.5
    refused = [r for r in double.requests if r.status == 429]
    assert sorted(r.retry_after for r in refused) == sorted(retry_after(e) for e in errors)
    assert all(r.in_flight == 2 for r in refused)
    assert double.count(200) == 2 and double.count(429) == 3 and double.count() == 5
    assert double.peak_in_flight == 2 and double.in_flight == 0


async def test_above_the_rate_requests_are_refused_until_the_window_has_room() -> None:
    double = ProviderDouble(rate=3, per=0.3)
    with serve(double) as base_url:
        async with client(base_url) as sdk:

            async def ask() -> Any:
                return await sdk.chat.completions.create(model="m", messages=MESSAGES)

            for _ in range(3):
                await ask()
            with pytest.raises(openai.RateLimitError) as refused:
                await ask()
            hint = retry_after(refused.value)
            assert hint is not None and 0 < hint <= 0.3
            await asyncio.sleep(hint)
            await ask()  # the window has room again
    statuses = [r.status for r in double.requests]
    assert statuses == [200, 200, 200, 429, 200]
    first, refusal = double.requests[0], double.requests[3]
    # the hint is the time until the oldest request leaves the window, rounded up to the ms
    assert refusal.retry_after == pytest.approx(first.arrived + 0.3 - refusal.arrived, abs=0.002)


async def test_a_fixed_hint_or_none_at_all() -> None:
    for kwargs, expected in [({"retry_after": 1.5}, 1.5), ({"retry_after_header": False}, None)]:
        double = ProviderDouble(max_concurrent=1, latency=0.3, **kwargs)
        with serve(double) as base_url:
            async with client(base_url) as sdk:
                outcomes = await asyncio.gather(
                    *(sdk.chat.completions.create(model="m", messages=MESSAGES) for _ in range(2)),
                    return_exceptions=True,
                )
        (error,) = [o for o in outcomes if isinstance(o, openai.RateLimitError)]
        assert retry_after(error) == expected and is_rate_limited(error, ())
        assert [r.retry_after for r in double.requests if r.status == 429] == [expected]


def test_requests_the_double_does_not_take() -> None:
    double = ProviderDouble()
    with serve(double) as base_url:
        assert post(base_url, "/v1/chat/completions", b"{not json")[0] == 400
        status, body = post(base_url, "/v1/chat/completions", b'{"model": "m"}')
        assert status == 400 and "'messages'" in body["error"]["message"]
        status, body = post(
            base_url,
            "/v1/chat/completions",
            json.dumps({"model": "m", "messages": MESSAGES, "stream": True}).encode(),
        )
        assert status == 400 and "stream" in body["error"]["message"]
        assert post(base_url, "/v1/embeddings", b"{}")[0] == 404
        assert post(base_url, "/v1/chat/completions", b"", method="GET")[0] == 405
        assert post(base_url, "/v1/models", b"", method="GET") == (
            200,
            {"object": "list", "data": []},
        )
    assert [r.status for r in double.requests] == [400, 400, 400, 404, 405, 200]
    assert double.in_flight == 0


def test_serve_shuts_down_cleanly_and_frees_its_port() -> None:
    before = {t.name for t in threading.enumerate()}
    with serve() as base_url:
        port = int(base_url.rsplit(":", 1)[1].split("/")[0])
        assert any(t.name == f"provider-double:{port}" for t in threading.enumerate())
    assert {t.name for t in threading.enumerate()} <= before  # the server thread ended
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def test_serve_stops_even_with_a_request_in_flight() -> None:
    """A slow request still running at exit is waited for (uvicorn's graceful shutdown),
    and the exit does not hang."""
    double = ProviderDouble(latency=0.3)
    answers: list[object] = []

    def call(base_url: str) -> None:
        try:
            body = json.dumps({"model": "m", "messages": MESSAGES}).encode()
            answers.append(post(base_url, "/v1/chat/completions", body)[0])
        except Exception as exc:  # reported by the assertion below
            answers.append(exc)

    began = time.monotonic()
    with serve(double) as base_url:
        caller = threading.Thread(target=call, args=(base_url,))
        caller.start()
        while double.in_flight == 0 and caller.is_alive():
            time.sleep(0.005)
    caller.join(5)
    assert not caller.is_alive() and time.monotonic() - began < 5
    assert answers == [200]  # answered before the server stopped
    assert [r.status for r in double.requests] == [200]


def test_the_log_is_safe_to_read_and_reset() -> None:
    double = ProviderDouble(rate=1, per=60)
    with serve(double) as base_url:
        body = json.dumps({"model": "m", "messages": MESSAGES}).encode()
        assert post(base_url, "/v1/chat/completions", body)[0] == 200
        assert post(base_url, "/v1/chat/completions", body)[0] == 429
        double.reset()  # a fresh start: the log and the rate window
        assert double.requests == [] and double.peak_in_flight == 0
        assert post(base_url, "/v1/chat/completions", body)[0] == 200
    (record,) = double.requests
    assert isinstance(record, RequestRecord) and record.status == 200


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_concurrent": 0}, ValueError, "max_concurrent=0"),
        ({"max_concurrent": 1.5}, TypeError, "max_concurrent=1.5"),
        ({"rate": 0}, ValueError, r"rate=0\) must be a finite number > 0"),
        ({"rate": float("nan")}, ValueError, "rate=nan"),
        ({"rate": "10"}, TypeError, "rate='10'"),
        ({"per": 0}, ValueError, "per=0"),
        ({"latency": -1}, ValueError, "latency=-1"),
        ({"retry_after": float("inf")}, ValueError, "retry_after=inf"),
        ({"reply": "hi"}, TypeError, "reply='hi'"),
    ],
)
def test_bad_arguments_are_refused(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        ProviderDouble(**kwargs)


async def call_app(double: ProviderDouble) -> tuple[int, Any]:
    """One chat completion request through the ASGI app itself, with no server at all."""
    sent: list[dict[str, Any]] = []
    body = json.dumps({"model": "m", "messages": MESSAGES}).encode()
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: Any) -> None:
        sent.append(dict(message))

    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions"}
    await double(scope, receive, send)
    start, payload = sent
    return start["status"], json.loads(payload["body"])


async def test_the_app_runs_under_any_asgi_server_without_uvicorn() -> None:
    status, body = await call_app(ProviderDouble())
    assert status == 200 and body["choices"][0]["message"]["content"] == "echo: hello there"


async def test_a_fractional_rate_is_at_most_that_many() -> None:
    double = ProviderDouble(rate=2.5, per=60)
    assert [(await call_app(double))[0] for _ in range(3)] == [200, 200, 429]


def test_serve_without_uvicorn_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    with pytest.raises(ImportError, match=r"pip install 'rh-parallel\[llm\]'"), serve():
        pass
