"""The fault specs' JSON form and the per-model fault script."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from skyroute.emulators.faults import (
    ContentFilterFault,
    ContextLengthFault,
    CutFault,
    DelayFault,
    Fault,
    FaultScript,
    HangFault,
    MalformedFault,
    NoDoneFault,
    ResetFault,
    SlowFirstTokenFault,
    StallFault,
    StatusFault,
    StreamErrorFault,
    applies_to_any_endpoint,
    decode_fault,
    decode_fault_order,
    encode_faults,
    to_fault,
)

EVERY_KIND: list[tuple[str, Fault]] = [
    ('{"kind":"status","status":429,"retry_after":2}', StatusFault(status=429, retry_after=2)),
    ('{"kind":"reset"}', ResetFault()),
    ('{"kind":"hang"}', HangFault()),
    ('{"kind":"delay","seconds":0.5}', DelayFault(seconds=0.5)),
    ('{"kind":"slow_first_token","seconds":3}', SlowFirstTokenFault(seconds=3)),
    ('{"kind":"cut","after_tokens":5}', CutFault(after_tokens=5)),
    ('{"kind":"stall","after_tokens":2,"seconds":9}', StallFault(after_tokens=2, seconds=9)),
    ('{"kind":"malformed","after_tokens":0}', MalformedFault(after_tokens=0)),
    ('{"kind":"no_done","hold":1.5}', NoDoneFault(hold=1.5)),
    ('{"kind":"context_length","max_context":8192}', ContextLengthFault(max_context=8192)),
    ('{"kind":"content_filter"}', ContentFilterFault()),
    ('{"kind":"stream_error","after_tokens":1,"code":"x"}', StreamErrorFault(code="x")),
]


def status(code: int, *, repeat: bool = False) -> StatusFault:
    return StatusFault(status=code, repeat=repeat)


@pytest.mark.parametrize(("text", "fault"), EVERY_KIND, ids=[f[0][9:22] for f in EVERY_KIND])
def test_every_kind_decodes_and_round_trips(text: str, fault: Fault) -> None:
    assert decode_fault(text) == fault
    assert decode_fault(msgspec.json.encode(fault)) == fault


def test_defaults() -> None:
    assert StallFault().seconds == 3600.0
    assert NoDoneFault().hold == 0.0
    assert StatusFault().status == 500
    assert CutFault().repeat is False


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ('{"kind":"explode"}', "kind"),
        ('{"kind":"cut","after_token":1}', "after_token"),
        ('{"kind":"cut","after_tokens":-1}', "after_tokens"),
        ('{"kind":"status","status":200}', "status"),
        ('{"kind":"delay","seconds":-1}', "seconds"),
        ('{"status":500}', "kind"),
    ],
)
def test_bad_specs_are_rejected_naming_the_field(text: str, complaint: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=complaint):
        decode_fault(text)


def test_to_fault_accepts_dicts_and_structs() -> None:
    assert to_fault({"kind": "reset", "repeat": True}) == ResetFault(repeat=True)
    assert to_fault(HangFault()) == HangFault()


def test_fault_order_defaults_to_any_model() -> None:
    order = decode_fault_order(b'{"faults":[{"kind":"hang"}]}')
    assert order.model == "*" and order.faults == [HangFault()]


def test_which_faults_apply_outside_chat() -> None:
    generic = [f for _, f in EVERY_KIND if applies_to_any_endpoint(f)]
    assert {type(f) for f in generic} == {StatusFault, ResetFault, HangFault, DelayFault}


def test_queue_is_first_in_first_out() -> None:
    script = FaultScript()
    script.add("m", [status(429), status(500)])
    script.add("m", [status(503)])
    assert [script.take("m") for _ in range(4)] == [status(429), status(500), status(503), None]


def test_model_queue_comes_before_any_model() -> None:
    script = FaultScript()
    script.add("*", [status(502)])
    script.add("m", [status(429)])
    assert script.take("other") == status(502)
    script.add("*", [status(504)])
    assert script.take("m") == status(429)
    assert script.take("m") == status(504)
    assert script.take("m") is None


def test_a_request_without_model_uses_any_model_only() -> None:
    script = FaultScript()
    script.add("m", [status(429)])
    assert script.take(None) is None
    script.add("*", [status(500)])
    assert script.take(None) == status(500)


def test_repeat_never_pops_until_cleared() -> None:
    script = FaultScript()
    script.add("m", [status(429), status(503, repeat=True), status(500)])
    taken = [script.take("m") for _ in range(4)]
    assert taken == [status(429)] + [status(503, repeat=True)] * 3
    script.clear()
    assert script.take("m") is None
    assert len(script) == 0


def test_clear_one_model() -> None:
    script = FaultScript()
    script.add("a", [status(500)])
    script.add("b", [status(500)])
    script.clear("a")
    assert script.pending() == {"b": [status(500)]}


def test_rejected_head_is_left_for_a_later_request() -> None:
    script = FaultScript()
    script.add("m", [CutFault()])
    script.add("*", [status(500), CutFault()])
    assert script.take("m", applies_to_any_endpoint) == status(500)
    assert script.take("m", applies_to_any_endpoint) is None
    assert script.take("m") == CutFault()
    assert script.take("m") == CutFault()
    assert len(script) == 0


def test_script_is_bounded() -> None:
    script = FaultScript(limit=3)
    script.add("m", [status(500)] * 3)
    with pytest.raises(ValueError, match="limited"):
        script.add("*", [status(500)])


def test_pending_is_a_snapshot_and_encodes() -> None:
    script = FaultScript()
    script.add("m", [ResetFault()])
    snapshot = script.pending()
    script.take("m")
    assert snapshot == {"m": [ResetFault()]}
    assert encode_faults(snapshot) == b'{"m":[{"kind":"reset","repeat":false}]}'


@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "*"]), st.integers(min_value=400, max_value=599)),
        max_size=30,
    )
)
def test_each_model_sees_its_own_faults_in_order_then_any(adds: list[tuple[str, int]]) -> None:
    script = FaultScript()
    for model, code in adds:
        script.add(model, [status(code)])
    own = [code for model, code in adds if model == "a"]
    shared = [code for model, code in adds if model == "*"]
    taken = []
    while (fault := script.take("a")) is not None:
        assert isinstance(fault, StatusFault)
        taken.append(fault.status)
    assert taken == own + shared
    others = [status(code) for model, code in adds if model == "b"]
    assert script.pending() == ({"b": others} if others else {})
