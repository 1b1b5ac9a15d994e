"""Stream a group's records to a web client as server-sent events, from a plain ASGI app.

``GET /events`` starts a run (a group of documents, one of which fails) and streams every
record the run publishes, one SSE event each: a ``data:`` line of JSON and a blank line. The
stream ends after the group's end record. ``GET /`` is a page that shows the stream in a
browser, and ``GET /runs`` lists the runs and their status as JSON.

The records come from the run's bus: ``bus.stream()`` iterates over the records published
after it was made, from a bounded queue, so a slow client loses the oldest records and never
slows the run. A client that goes away stops its own stream and nothing else: the run goes on
to its end (see ``/runs``), and no task is left behind. Stopping the server (Ctrl-C) ends the
streams, then cancels the runs still going. No web framework is needed; uvicorn serves the
app.

    pip install 'rh-parallel[llm]'           # uvicorn
    python examples/sse_stream.py            # then open http://127.0.0.1:8000/
    curl -N 'http://127.0.0.1:8000/events?docs=4'
    curl http://127.0.0.1:8000/runs

``--port 0`` picks a free port; the first line printed is the address.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import uvicorn

from rh_parallel import EventBus, ExecutionState, GroupStatus, ParallelEventGroup
from rh_parallel.runtime.bus import RecordStream

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


# -- the workflow a request starts ------------------------------------------------------------


async def process(doc: str, delay: float) -> str:
    await asyncio.sleep(delay)
    if doc == "doc-3":
        raise ValueError(f"{doc} is not valid UTF-8")  # one failure, to see one
    return f"summary of {doc}"


async def run_documents(
    state: ExecutionState, docs: int, delay: float, run: dict[str, Any]
) -> None:
    """One run: a group of ``docs`` items. ``run`` is its entry in ``/runs``."""
    try:
        async with state:  # leaving it delivers every record and ends the bus's streams
            async with state.parallel(max_workers=3, name="documents") as p:
                for n in range(docs):
                    p.add(f"doc-{n}", process, f"doc-{n}", delay)
            await p.gather()
        run.update(status=p.group.status.value, completed=p.group.completed, failed=p.group.failed)
    except asyncio.CancelledError:
        run["status"] = "cancelled"  # the server stopped before the run ended
        raise


# -- server-sent events -------------------------------------------------------------------------


def as_json(record: Any) -> str:
    """A bus record as JSON: a group record, or an item record (an ``ExecutionEvent``)."""
    if isinstance(record, ParallelEventGroup):
        return json.dumps({"kind": "group", **record.model_dump(mode="json")})
    actor = record.actor
    fields = record.model_dump(mode="json", exclude={"actor"})
    return json.dumps({"kind": "item", "actor": actor.name, **fields})


def ends_the_run(record: Any) -> bool:
    """The end record of the run's top-level group (its start record says ``running``)."""
    return (
        isinstance(record, ParallelEventGroup)
        and record.parent_group_id is None
        and record.status not in (GroupStatus.PENDING, GroupStatus.RUNNING)
    )


class App:
    """The ASGI application: ``/``, ``/events`` and ``/runs``."""

    def __init__(self, delay: float) -> None:
        self.delay = delay  # seconds per document
        self.runs: dict[str, dict[str, Any]] = {}  # run id -> status (the last 100)
        self.tasks: set[asyncio.Task[None]] = set()  # the runs still going
        self.streams: set[RecordStream] = set()  # the record streams of connected clients
        self.stopping = False

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
        elif scope["type"] == "http":
            path = scope["path"]
            if path == "/events":
                await self.events(scope, receive, send)
            elif path == "/runs":
                body = {"runs": list(self.runs.values()), "streams": len(self.streams)}
                await respond(send, 200, "application/json", json.dumps(body))
            elif path == "/":
                await respond(send, 200, "text/html; charset=utf-8", PAGE)
            else:
                await respond(send, 404, "text/plain", "not found\n")

    def start_run(self, bus: EventBus, docs: int) -> None:
        state = ExecutionState(event_bus=bus, capture_io=True)
        run = self.runs[state.run_id] = {"run_id": state.run_id, "docs": docs, "status": "running"}
        if len(self.runs) > 100:
            del self.runs[next(iter(self.runs))]
        # the run belongs to the app, not to the request: a client leaving does not stop it
        task = asyncio.create_task(run_documents(state, docs, self.delay, run))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def events(self, scope: Message, receive: Receive, send: Send) -> None:
        if self.stopping:
            await respond(send, 503, "text/plain", "the server is stopping\n")
            return
        query = parse_qs(scope["query_string"].decode())
        docs_arg = query.get("docs", ["6"])[0]
        docs = int(docs_arg) if docs_arg.isdecimal() else 0
        if not 1 <= docs <= 100:
            await respond(send, 400, "text/plain", "docs must be an integer from 1 to 100\n")
            return
        bus = EventBus()
        records = bus.stream(name="sse", max_queue=1000)  # before the run: no record missed
        self.start_run(bus, docs)
        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        self.streams.add(records)
        gone = asyncio.create_task(close_when_gone(receive, records))
        try:
            async for record in records:
                if gone.done() or self.stopping:
                    break
                await send({"type": "http.response.body", "body": sse(record), "more_body": True})
                if ends_the_run(record):
                    break
            if not gone.done():
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass  # the client went away while we sent (an ASGI server may raise then)
        finally:
            self.streams.discard(records)
            await records.aclose()  # stop receiving this run's records
            gone.cancel()
            await asyncio.wait([gone])  # never leave the watcher behind

    async def stop_streams(self) -> None:
        """End every stream now (the server is stopping, and waits for open responses)."""
        self.stopping = True
        for records in list(self.streams):
            await records.aclose()

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                # the streams have ended (Server.shutdown); cancel the runs still going
                for task in self.tasks:
                    task.cancel()
                await asyncio.gather(*self.tasks, return_exceptions=True)
                statuses = [run["status"] for run in self.runs.values()]
                print(f"stopped after {len(statuses)} runs: {', '.join(statuses)}", flush=True)
                await send({"type": "lifespan.shutdown.complete"})
                return


class Server(uvicorn.Server):
    """uvicorn's server, ending the app's streams first when it stops: uvicorn waits for open
    responses before it tells the app (lifespan) to stop, and a stream stays open until its
    run ends."""

    def __init__(self, app: App, **options: Any) -> None:
        super().__init__(uvicorn.Config(app, lifespan="on", **options))
        self.sse_app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self.sse_app.stop_streams()
        await super().shutdown(sockets)


def sse(record: Any) -> bytes:
    return f"data: {as_json(record)}\n\n".encode()


async def close_when_gone(receive: Receive, records: RecordStream) -> None:
    """Once the client has gone (or the response is complete), end its record stream."""
    while (await receive())["type"] != "http.disconnect":
        pass
    await records.aclose()  # the stream's loop ends: nothing more is sent


async def respond(send: Send, status: int, content_type: str, body: str) -> None:
    headers = [(b"content-type", content_type.encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body.encode()})


PAGE = """<!doctype html>
<meta charset="utf-8">
<title>rh-parallel: records as server-sent events</title>
<button id="start">Start a run</button>
<pre id="log"></pre>
<script>
document.getElementById("start").onclick = () => {
  const log = document.getElementById("log");
  log.textContent = "";
  const source = new EventSource("/events?docs=6");
  source.onmessage = (event) => {
    const r = JSON.parse(event.data);
    log.textContent += r.kind === "group"
      ? `group ${r.name}: ${r.status} (${r.completed} completed, ${r.failed} failed)\\n`
      : `  ${r.item_name}: ${r.execution_status} ${r.detail || r.message || ""}\\n`;
    // the group's end record is the last: close, or the browser would reconnect (a new run)
    if (r.kind === "group" && !r.parent_group_id && r.status !== "running") source.close();
  };
};
</script>
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--delay", type=float, default=0.2, help="seconds per document")
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    print(f"serving on http://{args.host}:{sock.getsockname()[1]}/", flush=True)
    server = Server(App(args.delay), log_level="warning", timeout_graceful_shutdown=5)
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises Ctrl-C once stopped
        server.run(sockets=[sock])


if __name__ == "__main__":
    main()
