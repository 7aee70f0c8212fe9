"""Settings from the environment: defaults, and clear errors for bad values."""
import pytest

from chalicelib.config import Settings
from chalicelib.errors import ConfigurationError


def test_defaults_apply_when_only_the_table_is_named():
    assert Settings.from_env({"TABLE_NAME": "t"}) == Settings(table_name="t", success_ttl_seconds=300,
                                                               max_concurrency=16, dynamodb_endpoint_url=None)


def test_values_are_read_from_the_environment():
    settings = Settings.from_env({"TABLE_NAME": "t", "SUCCESS_TTL_SECONDS": "60", "MAX_CONCURRENCY": "4",
                                  "DYNAMODB_ENDPOINT_URL": "http://127.0.0.1:8001"})

    assert (settings.success_ttl_seconds, settings.max_concurrency) == (60, 4)
    assert settings.dynamodb_endpoint_url == "http://127.0.0.1:8001"


@pytest.mark.parametrize("environ, message", [
    ({}, "TABLE_NAME is not set"),
    ({"TABLE_NAME": " "}, "TABLE_NAME is not set"),
    ({"TABLE_NAME": "t", "SUCCESS_TTL_SECONDS": "5m"}, "SUCCESS_TTL_SECONDS must be a whole number"),
    ({"TABLE_NAME": "t", "MAX_CONCURRENCY": "0"}, "MAX_CONCURRENCY must be at least 1"),
])
def test_bad_settings_fail_loudly(environ, message):
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env(environ)
