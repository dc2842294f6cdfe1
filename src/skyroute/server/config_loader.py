"""Reading ``skyroute.yaml`` from disk (the only part of config handling that does I/O)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import msgspec
import yaml

from skyroute.core.config import Config, ConfigError, parse_config
from skyroute.governance.prices import load_default, with_overrides


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the file ({exc.strerror})"]) from None
    return load_config_text(text, os.environ if env is None else env, source=str(path))


def load_config_text(text: str, env: Mapping[str, str], source: str = "<config>") -> Config:
    try:
        # safe_load only: a config file must never be able to build Python objects.
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError([f"{source}: invalid YAML{where}"]) from None
    config = parse_config(data, env)
    check_prices(config)
    return config


def check_prices(config: Config) -> None:
    """Price overrides are checked against the price table's own schema, here, so that a
    bad entry stops ``skyroute check`` and start-up instead of the first request."""
    if not config.prices:
        return
    try:
        with_overrides(load_default(), config.prices)
    except (msgspec.ValidationError, ValueError) as exc:
        raise ConfigError([f"prices: {exc}"]) from None
