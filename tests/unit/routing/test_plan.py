from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skyroute.core.config import Circuit, DeploymentConfig, ModelConfig
from skyroute.routing.plan import ModelRoute, build_routes, fallback_chain, plan_order


def dep(priority: int = 0, weight: float = 1.0, rpm: int | None = None) -> DeploymentConfig:
    return DeploymentConfig(provider="p", model="m", priority=priority, weight=weight, rpm=rpm)


def route(*deployments: DeploymentConfig, fallbacks: tuple[str, ...] = ()) -> ModelConfig:
    return ModelConfig(deployments=list(deployments), fallbacks=list(fallbacks))


def test_build_routes_gives_fresh_state_per_deployment() -> None:
    circuit = Circuit(failures=1, cooldown=5.0, max_cooldown=5.0)
    config = ModelConfig(deployments=[dep(), dep(priority=1)], circuit=circuit)
    routes = build_routes({"gpt-4o": config, "mini": route(dep())})
    gpt = routes["gpt-4o"]
    assert isinstance(gpt, ModelRoute)
    assert gpt.name == "gpt-4o" and gpt.config is config
    assert [d.key for d in gpt.deployments] == ["gpt-4o/0", "gpt-4o/1"]
    gpt.deployments[0].breaker.record_failure(0.0)
    assert gpt.deployments[0].reason_unavailable(1.0) == "circuit_open"
    assert gpt.deployments[1].available(1.0)
    assert [d.key for d in gpt.candidates(1.0, random.Random(0))] == ["gpt-4o/1"]


def test_lower_priority_number_goes_first() -> None:
    deployments = build_routes({"m": route(dep(2), dep(0), dep(1), dep(0))})["m"].deployments
    order = plan_order(deployments, 0.0, random.Random(3))
    assert [d.config.priority for d in order] == [0, 0, 1, 2]


def test_unavailable_deployments_are_dropped() -> None:
    deployments = build_routes({"m": route(dep(rpm=1), dep(), dep())})["m"].deployments
    deployments[0].quota.record_request(0.0)
    deployments[2].cool_down(0.0, 10.0)
    order = plan_order(deployments, 1.0, random.Random(0))
    assert order == [deployments[1]]
    assert len(plan_order(deployments, 61.0, random.Random(0))) == 3


def test_same_seed_same_order() -> None:
    deployments = build_routes({"m": route(*(dep(weight=w) for w in (1, 2, 3, 4)))})
    ds = deployments["m"].deployments
    assert plan_order(ds, 0.0, random.Random(9)) == plan_order(ds, 0.0, random.Random(9))


def test_weighted_frequencies_are_roughly_proportional() -> None:
    weights = [1.0, 2.0, 3.0, 4.0]
    ds = build_routes({"m": route(*(dep(weight=w) for w in weights))})["m"].deployments
    rng = random.Random(20240601)
    draws = 10_000
    first: Counter[str] = Counter()
    zero_before_three = 0
    for _ in range(draws):
        order = plan_order(ds, 0.0, rng)
        first[order[0].key] += 1
        zero_before_three += order.index(ds[0]) < order.index(ds[3])
    total = sum(weights)
    for d, w in zip(ds, weights, strict=True):
        assert first[d.key] / draws == pytest.approx(w / total, abs=0.02)
    # Sampling without replacement is an exponential race: P(i before j) = wi / (wi + wj).
    assert zero_before_three / draws == pytest.approx(1.0 / 5.0, abs=0.02)


def test_tiny_weights_do_not_collapse_into_ties() -> None:
    ds = build_routes({"m": route(dep(weight=1e-3), dep(weight=3e-3))})["m"].deployments
    rng = random.Random(5)
    wins = sum(plan_order(ds, 0.0, rng)[0] is ds[1] for _ in range(4000))
    assert wins / 4000 == pytest.approx(0.75, abs=0.03)


@given(
    specs=st.lists(
        st.tuples(st.integers(0, 3), st.floats(0.01, 100.0), st.booleans()), max_size=12
    ),
    seed=st.integers(0, 2**32),
)
def test_order_is_a_priority_sorted_permutation_of_the_available(
    specs: list[tuple[int, float, bool]], seed: int
) -> None:
    config = route(*(dep(priority=p, weight=w) for p, w, _ in specs))
    ds = build_routes({"m": config})["m"].deployments
    for d, (_, _, cooling) in zip(ds, specs, strict=True):
        if cooling:
            d.cool_down(0.0, 1.0)
    order = plan_order(ds, 0.5, random.Random(seed))
    assert sorted(d.key for d in order) == sorted(d.key for d in ds if d.available(0.5))
    priorities = [d.config.priority for d in order]
    assert priorities == sorted(priorities)


def test_fallback_chain_is_depth_first() -> None:
    routes = build_routes(
        {
            "a": route(dep(), fallbacks=("b", "c")),
            "b": route(dep(), fallbacks=("d",)),
            "c": route(dep()),
            "d": route(dep(), fallbacks=("c",)),
        }
    )
    assert fallback_chain(routes, "a") == ["a", "b", "d", "c"]
    assert fallback_chain(routes, "c") == ["c"]


def test_fallback_cycles_end() -> None:
    routes = build_routes(
        {
            "a": route(dep(), fallbacks=("b",)),
            "b": route(dep(), fallbacks=("a", "c")),
            "c": route(dep(), fallbacks=("c", "a")),
        }
    )
    assert fallback_chain(routes, "a") == ["a", "b", "c"]
    assert fallback_chain(routes, "c") == ["c", "a", "b"]


def test_fallback_chain_skips_unknown_names() -> None:
    routes = build_routes({"a": route(dep(), fallbacks=("ghost", "b")), "b": route(dep())})
    assert fallback_chain(routes, "a") == ["a", "b"]
    assert fallback_chain(routes, "ghost") == []
