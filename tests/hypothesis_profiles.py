"""Hypothesis profiles for tests that run against the local stack over real HTTP, and for the
stream mapping's laws under random failures and interleavings.

`make test` uses `dev` (few examples, every run); `STOREFIRST_PROFILE=ci` selects `ci`, the
thousands of examples a release or reliability run wants:

    STOREFIRST_PROFILE=ci .venv/bin/python -m pytest tests/test_hostile_input.py
    STOREFIRST_PROFILE=ci .venv/bin/python -m pytest tests/test_stream_parallel_laws.py

They are applied per test (`@settings(stack_profile())`, `@settings(law_profile())`), never loaded
globally, so each unit test keeps its own settings. Registered as `stack-dev`, `stack-ci`,
`laws-dev` and `laws-ci`, so no other module's profile of the same short name is replaced.
"""
from __future__ import annotations

import os
from typing import Any, Dict

from hypothesis import HealthCheck, settings

PROFILE_VARIABLE = "STOREFIRST_PROFILE"
PROFILES = ("dev", "ci")
# Each example is a request to a server: no deadline (a slow moment of the machine is not a
# failure), and no health check that assumes examples are cheap.
_OVER_HTTP: Dict[str, Any] = dict(deadline=None,
                                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

settings.register_profile("stack-dev", max_examples=100, **_OVER_HTTP)
settings.register_profile("stack-ci", max_examples=2000, **_OVER_HTTP)
# In-process simulations on fake time: each example runs up to a few thousand steps of the runner.
_SIMULATION: Dict[str, Any] = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("laws-dev", max_examples=80, **_SIMULATION)
settings.register_profile("laws-ci", max_examples=2000, **_SIMULATION)


def profile_name() -> str:
    name = os.environ.get(PROFILE_VARIABLE) or "dev"
    if name not in PROFILES:
        raise ValueError(f"{PROFILE_VARIABLE} must be one of {', '.join(PROFILES)}, got {name!r}")
    return name


def stack_profile() -> settings:
    return settings.get_profile(f"stack-{profile_name()}")


def law_profile() -> settings:
    return settings.get_profile(f"laws-{profile_name()}")
