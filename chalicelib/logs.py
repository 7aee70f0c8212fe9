"""The service's logger: Powertools' JSON Logger.

Powertools is not in the Lambda zip: both functions load it from AWS's public layer
(infra/template.yaml, `Layers`); requirements-dev.txt pins the same major version for local runs.
Every line about a request passes `extra={"request_id": ...}` instead of `append_keys`, because
requests of one batch are handled in threads and appended keys are shared by all of them.
"""
from aws_lambda_powertools.logging import Logger

logger = Logger(service="storefirst")
