"""The order in which a request tries a model's deployments, and its fallback models.

Deployments are grouped by ``priority``, lowest number first, so a cheaper or reserved
tier is used up before the next one is touched. Inside a tier the order is a weighted
random permutation: each next pick is drawn without replacement with probability
proportional to ``weight``. We use the Efraimidis-Spirakis keys ``u ** (1 / w)`` (sorted
descending), computed as ``log(u) / w`` so that small weights do not underflow to ties.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence

from skyroute.core.config import ModelConfig
from skyroute.routing.deployment import DeploymentState
from skyroute.routing.quota import WindowFactory


def plan_order(
    deployments: Sequence[DeploymentState],
    now: float,
    rng: random.Random,
    est_tokens: int = 0,
) -> list[DeploymentState]:
    """The available deployments in the order to try them. Draws one random number per
    available deployment, so a seeded ``rng`` gives a reproducible order."""
    keyed: list[tuple[int, float, int, DeploymentState]] = []
    for position, deployment in enumerate(deployments):
        if not deployment.available(now, est_tokens):
            continue
        key = _weighted_key(deployment.config.weight, rng)
        # Negated key: ascending sort gives priority ascending, key descending; the
        # position breaks exact ties so DeploymentState itself is never compared.
        keyed.append((deployment.config.priority, -key, position, deployment))
    keyed.sort()
    return [entry[3] for entry in keyed]


def _weighted_key(weight: float, rng: random.Random) -> float:
    u = rng.random()
    if u <= 0.0 or not weight > 0.0:
        # random() may return exactly 0.0; a weight <= 0 is refused by config
        # validation, but if one gets here it goes last rather than raising.
        return -math.inf
    return math.log(u) / weight


class ModelRoute:
    """A model name as clients call it, its configuration and its deployments."""

    __slots__ = ("config", "deployments", "name")

    def __init__(self, name: str, config: ModelConfig, deployments: list[DeploymentState]) -> None:
        self.name = name
        self.config = config
        self.deployments = deployments

    def candidates(
        self, now: float, rng: random.Random, est_tokens: int = 0
    ) -> list[DeploymentState]:
        return plan_order(self.deployments, now, rng, est_tokens)

    def __repr__(self) -> str:
        return f"ModelRoute({self.name!r}, deployments={len(self.deployments)})"


def build_routes(
    config_models: Mapping[str, ModelConfig],
    quota_windows: Callable[[str], WindowFactory] | None = None,
) -> dict[str, ModelRoute]:
    """Fresh runtime state (closed breakers, empty quotas) for every configured model;
    ``quota_windows`` as for ``DeploymentState``."""
    routes: dict[str, ModelRoute] = {}
    for name, model in config_models.items():
        deployments = [
            DeploymentState(
                model=name,
                index=i,
                config=dep,
                circuit=model.circuit,
                quota_windows=quota_windows,
            )
            for i, dep in enumerate(model.deployments)
        ]
        routes[name] = ModelRoute(name, model, deployments)
    return routes


def fallback_chain(routes: Mapping[str, ModelRoute], model: str) -> list[str]:
    """``model`` then its fallbacks in order, each followed at once by its own fallbacks
    (depth-first, pre-order). A model appears once; cycles in the configuration are cut
    where they close. Names without a route are skipped (validation refuses them), and an
    unknown ``model`` gives an empty chain."""
    chain: list[str] = []
    seen: set[str] = set()
    stack = [model]
    while stack:
        name = stack.pop()
        route = routes.get(name)
        if route is None or name in seen:
            continue
        seen.add(name)
        chain.append(name)
        # Reversed, so the first fallback is popped (and so expanded) first.
        stack.extend(reversed(route.config.fallbacks))
    return chain
