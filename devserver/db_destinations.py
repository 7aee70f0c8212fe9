"""Create, locally, the on-failure destination infra/template.yaml gives the stream mapping.

The template names it in the `DestinationConfig` of the function's DynamoDB event: an SQS queue,
an SNS topic or an S3 bucket (docs: ESM-7). A bucket's `NotificationConfiguration` (S3 event
notifications to a queue, docs: IAM-3) is applied too, so a failure object announces itself
locally as it does on AWS. Local names come by kind (`FailureNames`): the template has at most one
destination, and the queue a bucket notifies is the failure queue.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from devserver.db_schema import DEFAULT_BUCKET, DEFAULT_QUEUE, DEFAULT_TOPIC, ensure_queue
from devserver.stream.settings import OnFailure, parse_on_failure

__all__ = ["FailureNames", "ensure_bucket", "ensure_failure_destination", "ensure_topic", "stream_on_failure"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FailureNames:
    """The local name of each kind of failure-path resource."""

    queue: str = DEFAULT_QUEUE
    topic: str = DEFAULT_TOPIC
    bucket: str = DEFAULT_BUCKET

    def of(self, on_failure: OnFailure) -> str:
        return on_failure.local_name(queue=self.queue, topic=self.topic, bucket=self.bucket)


def stream_on_failure(template: Mapping[str, Any]) -> OnFailure | None:
    """The OnFailure of the template's DynamoDB stream event (the event with a `Stream`), if any."""
    resources = template.get("Resources") or {}
    for resource in resources.values():
        for event in ((resource or {}).get("Properties") or {}).get("Events", {}).values():
            properties = (event or {}).get("Properties") or {}
            if "Stream" in properties:
                return parse_on_failure(properties.get("DestinationConfig"), resources)
    return None


def ensure_failure_destination(template: Mapping[str, Any], names: FailureNames, *, sqs: Any, sns: Any, s3: Any,
                               region: str) -> str | None:
    """Create the template's destination if missing; return a description of it, or None."""
    on_failure = stream_on_failure(template)
    if on_failure is None:
        return None
    name = names.of(on_failure)
    if on_failure.kind == "SQS":
        ensure_queue(sqs, name)
    elif on_failure.kind == "SNS":
        ensure_topic(sns, name)
    else:
        ensure_bucket(s3, name, region)
        if on_failure.logical:
            _notify(s3, name, template["Resources"][on_failure.name], names, sqs)
    return f"{on_failure.kind} {name}"


def ensure_topic(sns: Any, name: str) -> str:
    """Create the topic if missing (CreateTopic is idempotent); return its ARN."""
    return str(sns.create_topic(Name=name)["TopicArn"])


def ensure_bucket(s3: Any, name: str, region: str) -> None:
    try:
        s3.head_bucket(Bucket=name)
        return
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
    log.info("creating bucket %s", name)
    location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=name, **location)


def _notify(s3: Any, bucket: str, resource: Mapping[str, Any], names: FailureNames, sqs: Any) -> None:
    """The bucket's `NotificationConfiguration.QueueConfigurations`, in the S3 API's spelling."""
    declared = ((resource.get("Properties") or {}).get("NotificationConfiguration") or {})
    unsupported = set(declared) - {"QueueConfigurations"}
    if unsupported:
        raise ValueError(f"bucket notifications {sorted(unsupported)} are not created locally (queues only)")
    configurations = []
    for entry in declared.get("QueueConfigurations") or []:
        url = ensure_queue(sqs, names.queue)  # the only queue on the failure path
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        rules = ((entry.get("Filter") or {}).get("S3Key") or {}).get("Rules") or []
        configuration: dict[str, Any] = {"QueueArn": arn, "Events": [entry["Event"]]}
        if rules:
            filter_rules = [{"Name": rule["Name"], "Value": rule["Value"]} for rule in rules]
            configuration["Filter"] = {"Key": {"FilterRules": filter_rules}}
        configurations.append(configuration)
    current = s3.get_bucket_notification_configuration(Bucket=bucket).get("QueueConfigurations") or []
    # Written only when it differs: S3 sends the queue a test event on every write (docs: IAM-3).
    if configurations and sorted(map(_comparable, current)) != sorted(map(_comparable, configurations)):
        s3.put_bucket_notification_configuration(Bucket=bucket,
                                                 NotificationConfiguration={"QueueConfigurations": configurations})


def _comparable(configuration: Mapping[str, Any]) -> tuple[Any, ...]:
    """A queue configuration without its generated Id; S3 may spell a rule's name "Prefix"."""
    rules = ((configuration.get("Filter") or {}).get("Key") or {}).get("FilterRules") or []
    return (configuration["QueueArn"], tuple(sorted(configuration["Events"])),
            tuple(sorted((rule["Name"].lower(), rule["Value"]) for rule in rules)))
