"""A lean closed-loop HTTP/1.1 load generator: asyncio (uvloop when installed) + httptools.

Every connection is keep-alive and sends its next request as soon as the previous answer is
complete, so `concurrency` is the number of requests in flight. Per request it records the
time to the first body byte (for a stream: the first event) and to the end of the answer.
A request counts as an error when the status is not 200, the connection breaks, or a stream
does not end with `data: [DONE]`.

Four modes, chosen by the spec's "mode":

- "paired": one connection per target, requests alternate between the targets (gateway,
  direct, gateway, ...), so both see the same client, machine state and drift. For the
  added-latency measurement at concurrency 1.
- "closed": `concurrency` connections to one target for `warmup_s + duration_s`; only the
  window after warm-up is measured (throughput, latency, CPU of the watched processes).
- "open": requests at fixed arrival times, `rate` per second for `warmup_s + duration_s`,
  whether or not earlier ones have finished; latency counts from each request's scheduled
  time, so queueing in the client or the server is not hidden (no coordinated omission).
  Keep-alive connections come from a pool that grows on demand up to `max_connections`; a
  request that finds none free waits for one, and one not sent within 1 s of its schedule
  is the error "late". Reports the generator's share of a core, `generator_saturated` above
  80 %.
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
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

import httptools
from environment import raise_fd_limit
from procs import core_busy_seconds, cpu_seconds, syscalls

_ns = time.perf_counter_ns
_DONE_TAIL = b"data: [DONE]\n\n"
_CONNECT_BATCH = 32
_LATE_NS = 1_000_000_000  # open mode: a request not sent within 1 s of its schedule is late
# uvloop's timers have millisecond resolution and fire at once below it, so a shorter sleep
# would spin; the open-mode scheduler wakes at most once a millisecond and sends what is due.
_TICK_S = 0.001
_SATURATED = 0.8  # share of one core above which the generator itself may be the bottleneck


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


# -- open loop ---------------------------------------------------------------------------------


class PooledConnection(Connection):
    """A keep-alive connection of the open-mode pool: answers are reported by callback, so a
    request costs no task and no future."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        check_done: bool,
        on_answer: Callable[[PooledConnection, str | None], None],
    ) -> None:
        super().__init__(loop, check_done)
        self._on_answer = on_answer
        self.busy = False
        self.scheduled_ns = self.sent_ns = self.end_ns = 0

    def send(self, request: bytes, scheduled_ns: int) -> None:
        assert self._transport is not None
        self.first_body_ns = 0
        self._tail = b""
        self.busy = True
        self.scheduled_ns = scheduled_ns
        self.sent_ns = _ns()
        self._transport.write(request)

    def on_message_complete(self) -> None:
        status = self._parser.get_status_code()
        if status != 200:
            self._finish(f"status_{status}")
        elif self._check_done and self._tail != _DONE_TAIL:
            self._finish("stream_without_done")
        else:
            self._finish(None)

    def _fail(self, kind: str) -> None:
        self._finish(kind)

    def _finish(self, kind: str | None) -> None:
        if self.busy:
            self.busy = False
            self.end_ns = _ns()
            self._on_answer(self, kind)


class OpenLoop:
    """The pool, the queue of requests waiting for a connection, and what was measured."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self._loop = asyncio.get_running_loop()
        self._target = spec["targets"][0]
        self._request = self._target["request"].encode("latin-1")
        self._check_done = bool(spec.get("stream", False))
        self._max_connections = int(spec.get("max_connections", 4096))
        self.window = (0, 0)  # scheduled times [from, to) that count; set when the run begins
        self.conns: list[PooledConnection] = []
        self.idle: list[PooledConnection] = []
        self.waiting: deque[int] = deque()  # scheduled times, oldest first
        self.opening = 0
        self.live = 0
        self.peak_live = 0
        self.opened_during_run = 0
        self.connect_errors: Counter[str] = Counter()
        self.samples: list[tuple[int, int, int, int]] = []  # scheduled, sent, first, end
        self.errors: Counter[str] = Counter()

    async def prefill(self, count: int) -> None:
        count = min(count, self._max_connections)
        for first in range(0, count, _CONNECT_BATCH):
            batch = min(_CONNECT_BATCH, count - first)
            await asyncio.gather(*(self._open(during_run=False) for _ in range(batch)))

    def dispatch(self, scheduled_ns: int) -> None:
        conn = None if self.waiting else self._pop_idle()
        if conn is not None:
            conn.send(self._request, scheduled_ns)
            return
        self.waiting.append(scheduled_ns)
        self.grow()

    def _pop_idle(self) -> PooledConnection | None:
        """The most recently used idle connection; ones the server closed (its keep-alive
        timeout) are dropped on the way."""
        while self.idle:
            conn = self.idle.pop()
            if not conn.lost:
                return conn
            self.live -= 1
        return None

    def grow(self) -> None:
        """One new connection per waiting request, at most a batch connecting at once: a
        burst past the server's listen backlog drops SYNs, each a 1 s retransmit."""
        want = min(len(self.waiting), _CONNECT_BATCH, self._max_connections - self.live)
        while self.opening < want:
            self.opening += 1
            self._loop.create_task(self._open(during_run=True, counted=True))

    def expire(self, now_ns: int) -> None:
        while self.waiting and now_ns - self.waiting[0] > _LATE_NS:
            self._error(self.waiting.popleft(), "late")

    def in_flight(self) -> int:
        return sum(1 for conn in self.conns if conn.busy) + len(self.waiting)

    def give_up(self) -> None:
        """At the deadline: whatever is still waiting or unanswered counts as unfinished."""
        for conn in self.conns:
            if conn.busy:
                self._error(conn.scheduled_ns, "unfinished_at_deadline")
        while self.waiting:
            self._error(self.waiting.popleft(), "unfinished_at_deadline")
        for conn in self.conns:
            conn.busy = False
            conn.close()

    async def _open(self, *, during_run: bool, counted: bool = False) -> None:
        if not counted:
            self.opening += 1
        try:
            _, conn = await self._loop.create_connection(
                lambda: PooledConnection(self._loop, self._check_done, self._answered),
                self._target["host"],
                self._target["port"],
            )
        except OSError as exc:
            self.connect_errors[type(exc).__name__] += 1
            return
        finally:
            self.opening -= 1
        self.conns.append(conn)
        self.live += 1
        self.peak_live = max(self.peak_live, self.live)
        self.opened_during_run += during_run
        self._take_next(conn)

    def _answered(self, conn: PooledConnection, kind: str | None) -> None:
        if kind is None:
            self.samples.append(
                (conn.scheduled_ns, conn.sent_ns, conn.first_body_ns or conn.end_ns, conn.end_ns)
            )
        else:
            self._error(conn.scheduled_ns, kind)
        if conn.lost:
            self.live -= 1
            self.grow()
        else:
            self._take_next(conn)

    def _take_next(self, conn: PooledConnection) -> None:
        now = _ns()
        while self.waiting:
            scheduled = self.waiting.popleft()
            if now - scheduled > _LATE_NS:
                self._error(scheduled, "late")
                continue
            conn.send(self._request, scheduled)
            return
        self.idle.append(conn)

    def _error(self, scheduled_ns: int, kind: str) -> None:
        if self.window[0] <= scheduled_ns < self.window[1]:
            self.errors[kind] += 1


async def run_open(spec: dict[str, Any]) -> dict[str, Any]:
    rate = float(spec["rate"])
    interval_ns = 1e9 / rate
    total = int((float(spec["warmup_s"]) + float(spec["duration_s"])) * rate)
    first_measured = int(float(spec["warmup_s"]) * rate)
    watch = spec.get("watch", {})
    pool = OpenLoop(spec)
    await pool.prefill(int(spec.get("initial_connections", 16)))
    begin = _ns()

    def due(index: int) -> int:
        return begin + round(index * interval_ns)

    pool.window = (due(first_measured), due(total))
    start: Snapshot | None = None
    sent = 0
    while sent < total:
        now = _ns()
        pool.expire(now)
        while sent < total and due(sent) <= now:
            if sent == first_measured:
                start = Snapshot(watch)
            pool.dispatch(due(sent))
            sent += 1
        if sent < total:
            await asyncio.sleep(max((due(sent) - _ns()) / 1e9, _TICK_S))
    end = Snapshot(watch)
    deadline = _ns() + int(spec.get("grace_s", 10.0) * 1e9)
    while pool.in_flight() and _ns() < deadline:
        pool.expire(_ns())
        await asyncio.sleep(0.01)
    pool.give_up()
    return _open_result(spec, pool, start.delta(end) if start else {})


def _open_result(spec: dict[str, Any], pool: OpenLoop, measured: dict[str, Any]) -> dict[str, Any]:
    kept = [s for s in pool.samples if pool.window[0] <= s[0] < pool.window[1]]
    rate, warmup_s = float(spec["rate"]), float(spec["warmup_s"])
    scheduled = int((warmup_s + float(spec["duration_s"])) * rate) - int(warmup_s * rate)
    errors = sum(pool.errors.values())
    elapsed = measured.get("elapsed_s") or 1e-9
    cpu_share = measured.get("loadgen_cpu_s", 0.0) / elapsed
    return {
        "mode": "open",
        "rate": spec["rate"],
        "window": measured,
        "scheduled": scheduled,
        "completed": len(kept),
        "achieved_rps": len(kept) / float(spec["duration_s"]),
        "errors": dict(pool.errors),
        "error_rate": errors / scheduled if scheduled else 0.0,
        "latency_us": percentiles([s[3] - s[0] for s in kept]),
        "first_byte_us": percentiles([s[2] - s[0] for s in kept]),
        "send_lag_us": percentiles([s[1] - s[0] for s in kept]),
        "service_us": percentiles([s[3] - s[1] for s in kept]),
        "connections": {
            "initial": int(spec.get("initial_connections", 16)),
            "opened_during_run": pool.opened_during_run,
            "peak": pool.peak_live,
            "max": int(spec.get("max_connections", 4096)),
            "connect_errors": dict(pool.connect_errors),
        },
        "generator_cpu_share": cpu_share,
        "generator_saturated": cpu_share > _SATURATED,
    }


_MODES = {"paired": run_paired, "closed": run_closed, "open": run_open, "hold": run_hold}


def main(argv: list[str]) -> int:
    spec = json.loads(argv[1])
    raise_fd_limit()  # 2,000 streams or a 4,096-connection pool need more than 1,024
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
