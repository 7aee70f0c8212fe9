"""What each Lambda function builds once per container, on first use rather than at import
(a cold start pays only for imports). Tests and the local stack inject their own with use()."""
from __future__ import annotations

from typing import Any, Dict, Optional

from chalicelib import config
from chalicelib.store import RequestStore

_built: Dict[str, Any] = {}


def use(name: str, value: Optional[Any]) -> None:
    """Install `value` as the `name` dependency; None drops it, to be rebuilt from the environment."""
    if value is None:
        _built.pop(name, None)
    else:
        _built[name] = value


def settings() -> config.Settings:
    if "settings" not in _built:
        _built["settings"] = config.Settings.from_env()
    return _built["settings"]


def store() -> RequestStore:
    if "store" not in _built:
        from chalicelib.aws import dynamodb_client

        _built["store"] = RequestStore(dynamodb_client(settings()), settings().table_name)
    return _built["store"]


def s3() -> Any:
    if "s3" not in _built:
        from chalicelib.aws import s3_client

        _built["s3"] = s3_client()
    return _built["s3"]


def reset() -> None:
    _built.clear()
