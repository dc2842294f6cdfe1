"""A lean closed-loop HTTP/1.1 load generator: asyncio (uvloop when installed) + httptools.

Every connection is keep-alive and sends its next request as soon as the previous answer is
complete, so `concurrency` is the number of requests in flight. Per request it records the
time to the first body byte (for a stream: the first event) and to the end of the answer.
A request counts as an error when the status is not 200, the connection breaks, or a stream
does not end with `data: [DONE]`.

Three modes, chosen by the spec's "mode":

- "paired": one connection per target, requests alternate between the targets (gateway,
  direct, gateway, ...), so both see the same client, machine state and drift. For the
  added-latency measurement at concurrency 1.
- "closed": `concurrency` connections to one target for `warmup_s + duration_s`; only the
  window after warm-up is measured (throughput, latency, CPU of the watched processes).
- "hold": open `streams` streaming requests and keep them open until told to let go (a line
  on stdin), to measure the memory each open stream costs the gateway.

Run by gateway_bench.py as a child process pinned to the load core: the spec is JSON in
argv[1], the result JSON on the last line of stdout. It reports its own CPU time over the
measured window so that a saturated generator shows. Needs only httptools (a skyroute
dependency) and, optionally, uvloop.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from collections import Counter
from typing import Any

import httptools
from procs import core_busy_seconds, cpu_seconds, syscalls

_ns = time.perf_counter_ns
_DONE_TAIL = b"data: [DONE]\n\n"
_CONNECT_BATCH = 32


class ExchangeError(Exception):
    """One request failed; `kind` is what the error table counts."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class Connection(asyncio.Protocol):
    """One keep-alive connection that runs one request at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop, check_done: bool) -> None:
        self._loop = loop
        self._check_done = check_done
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[int] | None = None
        self.first_body_waiter: asyncio.Future[None] | None = None
        self.first_body_ns = 0
        self._tail = b""
        self.lost = False

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only duck-typed ones.
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._fail("bad_response")
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._fail("connection_lost")

    # -- httptools callbacks -----------------------------------------------------------------

    def on_body(self, body: bytes) -> None:
        if not self.first_body_ns:
            self.first_body_ns = _ns()
            waiter = self.first_body_waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        if self._check_done:
            self._tail = (self._tail + body)[-len(_DONE_TAIL) :]

    def on_message_complete(self) -> None:
        waiter = self._waiter
        self._waiter = None
        if waiter is None or waiter.done():
            return
        status = self._parser.get_status_code()
        if self._check_done and status == 200 and self._tail != _DONE_TAIL:
            waiter.set_exception(ExchangeError("stream_without_done"))
        else:
            waiter.set_result(status)

    # -- use ---------------------------------------------------------------------------------

    async def exchange(self, request: bytes) -> tuple[int, int, int]:
        """Send one request; (start, first body byte, end) in perf_counter ns."""
        if self.lost or self._transport is None:
            raise ExchangeError("connection_lost")
        self.first_body_ns = 0
        self._tail = b""
        waiter = self._waiter = self._loop.create_future()
        start = _ns()
        self._transport.write(request)
        status = await waiter
        end = _ns()
        if status != 200:
            raise ExchangeError(f"status_{status}")
        return start, self.first_body_ns or end, end

    def send_only(self, request: bytes) -> asyncio.Future[None]:
        """Send a request and return a future for its first body byte (hold mode)."""
        assert self._transport is not None
        self.first_body_waiter = self._loop.create_future()
        self._waiter = self._loop.create_future()
        self._waiter.add_done_callback(_ignore_result)
        self._transport.write(request)
        return self.first_body_waiter

    def _fail(self, kind: str) -> None:
        for waiter in (self._waiter, self.first_body_waiter):
            if waiter is not None and not waiter.done():
                waiter.set_exception(ExchangeError(kind))
        self._waiter = None

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def _ignore_result(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # mark retrieved: hold mode never awaits the end of its streams


async def connect(target: dict[str, Any], check_done: bool) -> Connection:
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(
        lambda: Connection(loop, check_done), target["host"], target["port"]
    )
    return conn


async def connect_many(target: dict[str, Any], check_done: bool, count: int) -> list[Connection]:
    """`count` connections, opened in small batches: a burst larger than the server's listen
    backlog (asyncio's default is 100) drops SYNs, and each costs a 1 s retransmit."""
    conns: list[Connection] = []
    while len(conns) < count:
        batch = min(_CONNECT_BATCH, count - len(conns))
        conns += await asyncio.gather(*(connect(target, check_done) for _ in range(batch)))
    return conns


# -- measurements ------------------------------------------------------------------------------


def percentiles(values_ns: list[int]) -> dict[str, float]:
    """Nearest-rank percentiles in microseconds."""
    if not values_ns:
        return {}
    ordered = sorted(values_ns)
    n = len(ordered)

    def rank(p: float) -> float:
        return ordered[min(n - 1, max(0, int(p / 100 * n + 0.5) - 1))] / 1000

    return {
        "n": n,
        "p50": rank(50),
        "p90": rank(90),
        "p99": rank(99),
        "p999": rank(99.9),
        "max": ordered[-1] / 1000,
        "mean": sum(ordered) / n / 1000,
    }


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Snapshot:
    """Time, own CPU, the watched processes' CPU and the watched cores' busy time."""

    def __init__(self, watch: dict[str, Any]) -> None:
        self.ns = _ns()
        self.own = own_cpu()
        self.watched = {name: cpu_seconds(pid) for name, pid in watch.get("pids", {}).items()}
        self.cores = {str(c): core_busy_seconds(c) for c in watch.get("cores", [])}
        self.io = {name: syscalls(pid) for name, pid in watch.get("pids", {}).items()}

    def delta(self, later: Snapshot) -> dict[str, Any]:
        return {
            "elapsed_s": (later.ns - self.ns) / 1e9,
            "loadgen_cpu_s": later.own - self.own,
            "cpu_s": {k: later.watched[k] - v for k, v in self.watched.items()},
            "core_busy_s": {k: later.cores[k] - v for k, v in self.cores.items()},
            "syscalls": {
                name: {k: later.io[name][k] - v for k, v in counts.items()}
                for name, counts in self.io.items()
            },
        }


# -- modes -------------------------------------------------------------------------------------


async def run_paired(spec: dict[str, Any]) -> dict[str, Any]:
    targets = spec["targets"]
    check_done = spec.get("stream", False)
    conns = [await connect(t, check_done) for t in targets]
    requests = [t["request"].encode("latin-1") for t in targets]
    total = spec["warmup_requests"] + spec["samples"]
    deadline = _ns() + int(spec["time_limit_s"] * 1e9)
    first: list[list[int]] = [[] for _ in targets]
    whole: list[list[int]] = [[] for _ in targets]
    errors: list[Counter[str]] = [Counter() for _ in targets]
    watch = spec.get("watch", {})
    start = end = None
    for i in range(total):
        if i == spec["warmup_requests"]:
            start = Snapshot(watch)
        if _ns() > deadline:
            break
        for k, conn in enumerate(conns):
            try:
                t0, t1, t2 = await conn.exchange(requests[k])
            except ExchangeError as exc:
                errors[k][exc.kind] += 1
                if conn.lost:
                    conns[k] = await connect(targets[k], check_done)
                continue
            if start is not None:
                first[k].append(t1 - t0)
                whole[k].append(t2 - t0)
    end = Snapshot(watch)
    for conn in conns:
        conn.close()
    window = start.delta(end) if start is not None else {}
    return {
        "mode": "paired",
        "window": window,
        "targets": {
            t["name"]: {
                "count": len(whole[k]),
                "errors": dict(errors[k]),
                "first_byte_us": percentiles(first[k]),
                "latency_us": percentiles(whole[k]),
            }
            for k, t in enumerate(targets)
        },
    }


async def run_closed(spec: dict[str, Any]) -> dict[str, Any]:
    target = spec["targets"][0]
    check_done = spec.get("stream", False)
    request = target["request"].encode("latin-1")
    loop = asyncio.get_running_loop()
    watch = spec.get("watch", {})
    conns = await connect_many(target, check_done, spec["concurrency"])
    begin = _ns()
    window_start = begin + int(spec["warmup_s"] * 1e9)
    window_end = window_start + int(spec["duration_s"] * 1e9)
    max_requests = spec["max_requests"]
    samples: list[tuple[int, int, int]] = []
    errors: Counter[str] = Counter()
    snapshots: dict[str, Snapshot] = {}
    to_s = 1e-9
    now_loop = loop.time()
    loop.call_at(now_loop + (window_start - begin) * to_s, _snap, snapshots, "start", watch)
    loop.call_at(now_loop + (window_end - begin) * to_s, _snap, snapshots, "end", watch)

    async def worker(index: int) -> None:
        conn = conns[index]
        while len(samples) < max_requests:
            if _ns() >= window_end:
                return
            try:
                samples.append(await conn.exchange(request))
            except ExchangeError as exc:
                if _ns() >= window_start:
                    errors[exc.kind] += 1
                if conn.lost:
                    conn = conns[index] = await connect(target, check_done)

    tasks = [asyncio.create_task(worker(i)) for i in range(len(conns))]
    grace = spec.get("grace_s", 10.0)
    _, pending = await asyncio.wait(tasks, timeout=spec["warmup_s"] + spec["duration_s"] + grace)
    for task in pending:
        task.cancel()
    if pending:
        errors["unfinished_at_deadline"] += len(pending)
        await asyncio.gather(*pending, return_exceptions=True)
    if "end" not in snapshots:  # stopped early by max_requests
        _snap(snapshots, "end", watch)
    for conn in conns:
        conn.close()
    window_end = min(window_end, snapshots["end"].ns)
    measured = [s for s in samples if s[0] >= window_start and s[2] <= window_end]
    completed = sum(1 for s in samples if window_start <= s[2] <= window_end)
    window = snapshots["start"].delta(snapshots["end"]) if "start" in snapshots else {}
    elapsed = window.get("elapsed_s") or 1e-9
    return {
        "mode": "closed",
        "concurrency": spec["concurrency"],
        "window": window,
        "completed": completed,
        "rps": completed / elapsed,
        "errors": dict(errors),
        "first_byte_us": percentiles([s[1] - s[0] for s in measured]),
        "latency_us": percentiles([s[2] - s[0] for s in measured]),
    }


def _snap(snapshots: dict[str, Snapshot], name: str, watch: dict[str, Any]) -> None:
    snapshots[name] = Snapshot(watch)


async def run_hold(spec: dict[str, Any]) -> dict[str, Any]:
    """Open `streams` streams, wait for each one's first event, report, wait, close."""
    target = spec["targets"][0]
    request = target["request"].encode("latin-1")
    count = spec["streams"]
    began = _ns()
    failed: Counter[str] = Counter()
    conns = await connect_many(target, False, count)
    firsts = [conn.send_only(request) for conn in conns]
    done, pending = await asyncio.wait(firsts, timeout=spec["timeout_s"])
    for future in done:
        exc = future.exception()
        if exc is not None:
            failed[getattr(exc, "kind", type(exc).__name__)] += 1
    failed["no_first_event"] += len(pending)
    held = count - sum(failed.values())
    print(f"HELD {held}", flush=True)
    loop = asyncio.get_running_loop()
    await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.readline), spec["hold_limit_s"])
    for conn in conns:
        conn.close()
    await asyncio.sleep(0.2)
    return {
        "mode": "hold",
        "requested": count,
        "held": held,
        "errors": dict(failed),
        "open_s": (_ns() - began) / 1e9,
    }


_MODES = {"paired": run_paired, "closed": run_closed, "hold": run_hold}


def main(argv: list[str]) -> int:
    spec = json.loads(argv[1])
    try:
        import uvloop
    except ImportError:
        runner = asyncio.run
        loop_name = "asyncio"
    else:
        runner = uvloop.run
        loop_name = "uvloop"
    result = runner(_MODES[spec["mode"]](spec))
    result["loop"] = loop_name
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
