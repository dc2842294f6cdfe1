"""``streamGenerateContent?alt=sse`` payloads → canonical stream events (protocols.md §4a).

Each SSE ``data:`` payload is a whole GenerateContentResponse that holds only the parts
that are new since the previous one. ``finishReason`` and the final ``usageMetadata``
arrive on the last payload or payloads, and there is no ``[DONE]``: the stream ends when
the body does, and the caller then calls ``close()``, which reports the usage (the last
``usageMetadata`` seen wins, since earlier payloads may carry partial counts).

A functionCall part always arrives whole, so each becomes one ``ToolCallStart`` and one
``ToolCallDelta`` with all its arguments. Its id is the one ``from_gemini`` would give
(see ``wire.gemini``): built from the response id, the choice and the call's slot.

Pure: no I/O, no clock, no logging.
"""

from __future__ import annotations

from skyroute.core.chat import (
    Finish,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
    UsageReport,
)
from skyroute.core.errors import UpstreamProtocolError
from skyroute.wire.gemini_response import (
    GeminiCandidate,
    GeminiPart,
    GeminiUsage,
    decode_response,
    encode_signature,
    make_tool_call,
    map_finish_reason,
    signature_bytes,
    to_usage,
)

__all__ = ["GeminiStreamTranslator"]


class _Choice:
    """What the translator remembers about one candidate."""

    __slots__ = ("finished", "slots")

    def __init__(self) -> None:
        self.slots = 0
        """Tool calls seen so far; the next call's slot."""
        self.finished = False


class GeminiStreamTranslator:
    """One Gemini SSE stream, payload by payload."""

    __slots__ = ("_blocked", "_choices", "_response_id", "_usage")

    def __init__(self, response_id: str) -> None:
        self._response_id = response_id
        """The gateway's response id: tool-call ids are derived from it."""
        self._choices: dict[int, _Choice] = {}
        self._usage: GeminiUsage | None = None
        self._blocked = False

    def feed(self, data: bytes) -> list[StreamEvent]:
        """One SSE ``data:`` payload → the canonical events it carries.

        A ``{"error": …}`` payload raises the mapped ``GatewayError``; a malformed one
        raises ``UpstreamProtocolError``.
        """
        response = decode_response(data)
        if response.usage_metadata is not None:
            self._usage = response.usage_metadata
        events: list[StreamEvent] = []
        for position, candidate in enumerate(response.candidates):
            index = candidate.index if candidate.index is not None else position
            self._candidate(index, candidate, events)
        feedback = response.prompt_feedback
        block_reason = feedback.block_reason if feedback is not None else None
        if block_reason and not response.candidates and not self._blocked and not self._choices:
            # A blocked prompt: no candidates, only promptFeedback.blockReason (§4a).
            self._blocked = True
            events.append(Finish(reason="content_filter", raw_reason=block_reason))
        return events

    def close(self) -> list[StreamEvent]:
        """The body ended: the usage, if Gemini sent any. ``UpstreamProtocolError`` if a
        candidate never got its ``finishReason`` (the stream was cut short)."""
        unfinished = not self._blocked and (
            not self._choices or any(not c.finished for c in self._choices.values())
        )
        if unfinished:
            raise UpstreamProtocolError("The Gemini stream ended before its finishReason.")
        return [UsageReport(usage=to_usage(self._usage))] if self._usage is not None else []

    def _candidate(self, index: int, candidate: GeminiCandidate, events: list[StreamEvent]) -> None:
        state = self._choices.get(index)
        if state is None:
            state = self._choices[index] = _Choice()
        parts = candidate.content.parts if candidate.content is not None else []
        if state.finished:
            if parts:
                raise UpstreamProtocolError("Gemini streamed parts after the finishReason.")
            return
        for part in parts:
            self._part(index, state, part, events)
        reason = candidate.finish_reason
        if reason:
            state.finished = True
            finish = map_finish_reason(reason, has_tool_calls=state.slots > 0)
            events.append(Finish(choice=index, reason=finish, raw_reason=reason))

    def _part(
        self, index: int, state: _Choice, part: GeminiPart, events: list[StreamEvent]
    ) -> None:
        signature = signature_bytes(part.thought_signature)
        if part.function_call is not None:
            call = make_tool_call(
                part.function_call, signature, self._response_id, index, state.slots
            )
            slot = state.slots
            state.slots += 1
            events.append(
                ToolCallStart(
                    choice=index, slot=slot, id=call.id, name=call.name, signature=call.signature
                )
            )
            events.append(ToolCallDelta(choice=index, slot=slot, arguments=call.arguments))
        elif part.thought:
            if part.text or signature:
                sig = encode_signature(signature)
                events.append(ReasoningDelta(choice=index, text=part.text or "", signature=sig))
        elif part.text is not None:
            if part.text:
                events.append(TextDelta(choice=index, text=part.text))
            if signature:
                # Gemini 3 signs the last part of a plain answer, often an empty text part
                # of its own at the end of a stream; it travels as signed reasoning.
                events.append(ReasoningDelta(choice=index, signature=encode_signature(signature)))
