"""A request's whole lifecycle in-process, for pytest: no server, no port, moto's in-memory backend.

    from chalice.test import Client          # what LocalPipeline drives the functions with
    from devserver.testing.pipeline import LocalPipeline

    def test_my_logic():
        with LocalPipeline(app, business_logic=my_logic.handle) as pipeline:
            accepted = pipeline.put({"table": 3, "items": [{"dish": "marinara", "qty": 1}]})
            pipeline.process()
            assert pipeline.get(accepted.json_body["id"]).json_body["status"] == "SUCCEEDED"

- `put` goes through infra/template.yaml's own PUT integration (validator, request template,
  integration responses) rendered by the local API Gateway, into moto's table;
- `process` reads the table's stream through the template's event source mapping (filters,
  partial batch responses, bisect, retries, failure destination) and invokes the app's functions
  with Chalice's test client (`Client(app).lambda_.invoke`), then runs the failure-queue consumer
  the same way, until nothing is left to do. Retry backoffs do not sleep: the mapping's clock is
  moved on instead;
- `get`, `retry` and `list` are the Chalice routes through `Client(app).http`.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional

from devserver.infra import load_template
from devserver.local_config import DEFAULT_REGION, PROJECT_DIR

TEMPLATE = PROJECT_DIR / "infra" / "template.yaml"
_MAX_STEPS = 10_000


@dataclass(frozen=True)
class PipelineResponse:
    """An HTTP answer, shaped like chalice.test's HTTPResponse (status_code, headers, body, json_body)."""

    status_code: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def json_body(self) -> Any:
        return json.loads(self.body) if self.body else None


class _Clock:
    """Wall time plus what `process` skipped over while a retry backed off."""

    def __init__(self) -> None:
        self.skipped = 0.0

    def __call__(self) -> float:
        return time.time() + self.skipped


class LocalPipeline:
    def __init__(self, app: Any, *, business_logic: Optional[Callable[[Mapping[str, Any]], Any]] = None,
                 stage: str = "dev", region: str = DEFAULT_REGION, project_dir: Path = PROJECT_DIR) -> None:
        self.app = app
        self.stage = stage
        self.region = region
        self._project_dir = project_dir
        self._business_logic = business_logic
        self._saved_env: Dict[str, Optional[str]] = {}
        self._mock: Any = None
        self._previous_logic: Any = None
        self.clock = _Clock()

    # --- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> "LocalPipeline":
        try:
            self._start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        from chalicelib import processor, runtime

        if self._previous_logic is not None:
            processor.configure(self._previous_logic)
        runtime.reset()
        if self._mock is not None:
            self._mock.stop()
            self._mock = None
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def _start(self) -> None:
        import boto3
        from botocore.config import Config
        from chalice.test import Client
        from moto import mock_aws

        from chalicelib import processor, runtime
        from devserver import moto_partiql
        from devserver.apigw import make_app
        from devserver.apigw_transport import BotocoreTransport
        from devserver.db_destinations import FailureNames, ensure_failure_destination
        from devserver.db_schema import DEFAULT_QUEUE, ensure_queue, ensure_table, queue_attributes
        from devserver.stream import build_runner

        self._set_env({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": self.region, "AWS_REGION": self.region,
                       "AWS_SESSION_TOKEN": None, "AWS_PROFILE": None, "DYNAMODB_ENDPOINT_URL": None})
        moto_partiql.install()
        self._mock = mock_aws()
        self._mock.start()
        runtime.reset()  # clients built before belong to another backend
        if self._business_logic is not None:
            self._previous_logic = processor.configured_logic()
            processor.configure(self._business_logic)
        self.client = Client(self.app, stage_name=self.stage, project_dir=str(self._project_dir))
        self.table_name = str(self.client._chalice_config.environment_variables["TABLE_NAME"])
        template = load_template(TEMPLATE)
        dynamodb = boto3.client("dynamodb", region_name=self.region)
        ensure_table(dynamodb, template, self.table_name)
        sqs = boto3.client("sqs", region_name=self.region)
        ensure_queue(sqs, DEFAULT_QUEUE, queue_attributes(template))
        ensure_failure_destination(template, FailureNames(), sqs=sqs, sns=boto3.client("sns", region_name=self.region),
                                   s3=boto3.client("s3", region_name=self.region), region=self.region)
        # API Gateway does not retry its integration call.
        gateway_client = boto3.client("dynamodb", region_name=self.region,
                                      config=Config(retries={"total_max_attempts": 1}))
        self._gateway = make_app(TEMPLATE, self.table_name, "http://unused", self.region, chalice_app=self.app,
                                 transport=BotocoreTransport(gateway_client), chalice_stage=self.stage,
                                 project_dir=self._project_dir)
        self.runner = build_runner(
            template_path=TEMPLATE, app=self.app, table_name=self.table_name, region=self.region,
            dynamodb_endpoint=None, sqs_endpoint=None, queue_name=DEFAULT_QUEUE, checkpoint_path=None,
            handler=self._invoker(self._stream_function()), stage=self.stage, clock=self.clock,
            sleep=lambda seconds: None)
        self._failures = self._failure_consumer(sqs)

    # --- the request's life -----------------------------------------------------------------

    def put(self, body: Any, headers: Optional[Mapping[str, str]] = None) -> PipelineResponse:
        """PUT /requests through the template's integration, exactly as API Gateway answers it."""
        from werkzeug.test import Client as WsgiClient

        data = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
        answer = WsgiClient(self._gateway).put("/requests", data=data,
                                               headers={"Content-Type": "application/json", **(headers or {})})
        return PipelineResponse(answer.status_code, dict(answer.headers), answer.get_data())

    def get(self, request_id: str) -> Any:
        return self.client.http.get(f"/requests/{request_id}")

    def retry(self, request_id: str) -> Any:
        return self.client.http.post(f"/requests/{request_id}/retry")

    def list(self, status: str) -> Any:
        return self.client.http.get(f"/requests?status={status}")

    def process(self) -> Dict[str, int]:
        """Run the stream mapping and the failure-queue consumer until nothing is left to do;
        the mapping's counters (records delivered, invocations, retries...) for this call."""
        before = dict(self.runner.status()["counters"])
        for _ in range(_MAX_STEPS):
            progressed = self.runner.poll_once()
            if self._failures is not None:
                progressed = self._failures.poll_once() > 0 or progressed
            if progressed:
                continue
            waiting = [shard for shard in self.runner.status()["shards"].values() if shard["uncommitted"]]
            if not waiting:
                break
            self.clock.skipped += 1.0  # a batch waits for its retry: let its backoff pass
        else:
            raise RuntimeError(f"the pipeline still had work after {_MAX_STEPS} steps")
        after = self.runner.status()["counters"]
        return {name: after[name] - before.get(name, 0) for name in after}

    # --- wiring -------------------------------------------------------------------------------

    def _stream_function(self) -> str:
        from chalice.app import DynamoDBEventConfig

        names = [s.name for s in self.app.event_sources if isinstance(s, DynamoDBEventConfig)]
        if len(names) != 1:
            raise ValueError(f"LocalPipeline needs exactly one @on_dynamodb_record handler, found {names}")
        return names[0]

    def _invoker(self, function: str) -> Callable[[Any, Any], Any]:
        def invoke(event: Any, context: Any = None) -> Any:
            return self.client.lambda_.invoke(function, event).payload
        return invoke

    def _failure_consumer(self, sqs: Any) -> Any:
        from chalice.app import SQSEventConfig

        from devserver.lambda_events import SqsEventSource

        for source in self.app.event_sources:
            if isinstance(source, SQSEventConfig):
                from devserver.db_schema import DEFAULT_QUEUE

                url = sqs.get_queue_url(QueueName=DEFAULT_QUEUE)["QueueUrl"]
                arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
                return SqsEventSource(sqs, url, arn, self._invoker(source.name), region=self.region,
                                      function_name=source.name, batch_size=source.batch_size)
        return None

    def _set_env(self, values: Mapping[str, Optional[str]]) -> None:
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
