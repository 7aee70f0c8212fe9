"""What each Lambda function builds once per container, on first use rather than at import
(a cold start pays only for imports). Tests and the local stack inject their own with use()."""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional

from chalicelib import config
from chalicelib.store import RequestStore

_built: Dict[str, Any] = {}


def use(name: str, value: Optional[Any]) -> None:
    """Install `value` as the `name` dependency; None drops it, to be rebuilt from the environment."""
    if value is None:
        _built.pop(name, None)
    else:
        _built[name] = value


def built(name: str, build: Callable[[], Any]) -> Any:
    """The `name` dependency, built by `build` the first time it is asked for."""
    if name not in _built:
        _built[name] = build()
    return _built[name]


def settings() -> config.Settings:
    value: config.Settings = built("settings", config.Settings.from_env)
    return value


def traced() -> bool:
    """X-Ray instruments botocore before the first client is built, where the stage wants it."""
    from chalicelib import tracing

    value: bool = built("tracing", tracing.instrument)
    return value


def store() -> RequestStore:
    def build() -> RequestStore:
        from chalicelib.aws import dynamodb_client

        traced()
        return RequestStore(dynamodb_client(settings()), settings().table_name)
    value: RequestStore = built("store", build)
    return value


def s3() -> Any:
    def build() -> Any:
        from chalicelib.aws import s3_client

        traced()
        return s3_client()
    return built("s3", build)


def reset() -> None:
    _built.clear()
