from __future__ import annotations

from skyroute.core.config import Circuit, DeploymentConfig
from skyroute.routing.deployment import DeploymentState

CIRCUIT = Circuit(failures=2, cooldown=10.0, max_cooldown=40.0)


def make(rpm: int | None = None, tpm: int | None = None) -> DeploymentState:
    config = DeploymentConfig(provider="azure-east", model="gpt-4o", rpm=rpm, tpm=tpm)
    return DeploymentState(model="gpt-4o", index=1, config=config, circuit=CIRCUIT)


def test_key_names_model_and_index() -> None:
    deployment = make()
    assert deployment.key == "gpt-4o/1"
    assert deployment.config.provider == "azure-east"
    assert deployment.available(0.0)
    assert deployment.reason_unavailable(0.0) is None


def test_cool_down_after_429() -> None:
    deployment = make()
    deployment.cool_down(100.0, 5.0)
    assert deployment.reason_unavailable(100.0) == "cooling_down"
    assert not deployment.available(104.9)
    assert deployment.available(105.0)


def test_shorter_cooldown_does_not_cut_a_longer_one() -> None:
    deployment = make()
    deployment.cool_down(0.0, 30.0)
    deployment.cool_down(1.0, 2.0)
    assert deployment.cooldown_until == 30.0
    deployment.cool_down(1.0, -5.0)
    assert deployment.cooldown_until == 30.0


def test_open_circuit_is_reported_first() -> None:
    deployment = make(rpm=1)
    deployment.quota.record_request(0.0)
    deployment.cool_down(0.0, 60.0)
    deployment.breaker.record_failure(0.0)
    deployment.breaker.record_failure(0.0)
    assert deployment.reason_unavailable(1.0) == "circuit_open"
    assert deployment.reason_unavailable(11.0) == "quota"
    assert deployment.reason_unavailable(61.0) is None


def test_quota_reason_uses_the_token_estimate() -> None:
    deployment = make(tpm=100)
    deployment.quota.record_tokens(0.0, 60)
    assert deployment.available(0.0, est_tokens=40)
    assert not deployment.available(0.0, est_tokens=41)
    assert deployment.reason_unavailable(0.0, est_tokens=41) == "quota"


def test_availability_check_does_not_take_the_probe() -> None:
    deployment = make()
    deployment.breaker.record_failure(0.0)
    deployment.breaker.record_failure(0.0)
    assert deployment.available(10.0)
    assert deployment.available(10.0)
    assert deployment.breaker.allow(10.0)
    assert deployment.reason_unavailable(10.0) == "circuit_open"
