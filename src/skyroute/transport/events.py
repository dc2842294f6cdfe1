"""Server-sent events read off an upstream response, one ``data`` payload at a time."""

from __future__ import annotations

from collections import deque

from skyroute.transport.client import Response
from skyroute.transport.sse import SSEDecoder, SSEEvent


class EventReader:
    """Pulls body pieces from ``response`` and yields complete SSE events.

    Events without data (pure ``event:`` or ``id:`` frames) are skipped; comment pings
    still count as liveness because any bytes reset the caller's idle timer.
    """

    __slots__ = ("_decoder", "_pending", "_response", "ended")

    def __init__(self, response: Response, max_line_bytes: int = 1 << 20) -> None:
        self._response = response
        self._decoder = SSEDecoder(max_line_bytes=max_line_bytes)
        self._pending: deque[SSEEvent] = deque()
        self.ended = False

    async def next_event(self, timeout: float) -> SSEEvent | None:
        """The next event with data, or ``None`` when the body ended.

        ``timeout`` bounds each wait for bytes (an idle gap), so a trickle of pings keeps
        the stream alive while a silent upstream raises ``ReadTimeout``.
        """
        while not self._pending:
            if self.ended:
                return None
            chunk = await self._response.next_chunk(timeout)
            if chunk is None:
                self.ended = True
                return None
            for event in self._decoder.feed(chunk):
                if event.data or event.event:
                    self._pending.append(event)
        return self._pending.popleft()

    def ready(self) -> SSEEvent | None:
        """An event already decoded from bytes read earlier, or ``None``; never waits."""
        return self._pending.popleft() if self._pending else None
