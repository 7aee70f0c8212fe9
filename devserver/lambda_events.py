"""The app's other event sources, locally: the SQS failure-queue consumer and the schedule.

On AWS, Lambda polls the queue (an SQS event source mapping with ReportBatchItemFailures) and
EventBridge fires the schedule. Here one thread polls the local queue and invokes the handler
with an AWS-shaped SQS event; another fires the scheduled handler at its declared rate (or a
faster one for local runs).
"""
from __future__ import annotations

import functools
import hashlib
import logging
import threading
import time
import uuid
from typing import Any, Callable, Dict, List, Mapping, Optional

from devserver.stream.invoke import FunctionContext

log = logging.getLogger(__name__)
Handler = Callable[[Dict[str, Any], Any], Any]


def sqs_event(messages: List[Mapping[str, Any]], queue_arn: str, region: str) -> Dict[str, Any]:
    """ReceiveMessage results as Lambda delivers them to an SQS-triggered function."""
    return {"Records": [{
        "messageId": m["MessageId"],
        "receiptHandle": m["ReceiptHandle"],
        "body": m["Body"],
        "attributes": dict(m.get("Attributes", {})),
        "messageAttributes": dict(m.get("MessageAttributes", {})),
        "md5OfBody": m.get("MD5OfBody") or hashlib.md5(m["Body"].encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    } for m in messages]}


def failed_message_ids(response: Any, delivered: List[str]) -> Optional[List[str]]:
    """The ids to leave on the queue per an SQS partial batch response; None = all of them
    (a malformed response or an unknown id fails the whole batch, as Lambda does)."""
    if response in (None, {}, []):
        return []
    if not isinstance(response, Mapping):
        return None
    entries = response.get("batchItemFailures") or []
    if not isinstance(entries, list):
        return None
    ids = []
    for entry in entries:
        identifier = entry.get("itemIdentifier") if isinstance(entry, Mapping) else None
        if not identifier or identifier not in delivered:
            return None
        ids.append(identifier)
    return ids


class Repeating:
    """A daemon thread calling `tick` every `every` seconds until stop() (prompt: it waits on an event)."""

    def __init__(self, name: str, tick: Callable[[], Any], every: float,
                 status: Callable[[], Dict[str, Any]] = dict) -> None:
        self.name = name
        self.status = status
        self._tick = tick
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> "Repeating":
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._tick()
            except Exception:  # noqa: BLE001 - a failing tick is logged; the source keeps running
                log.exception("%s failed", self._thread.name)
            self._stop.wait(self._every)


class SqsEventSource:
    """Lambda's SQS event source mapping for one queue and one handler."""

    def __init__(self, sqs: Any, queue_url: str, queue_arn: str, handler: Handler, *, region: str,
                 function_name: str, batch_size: int = 10) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._handler = handler
        self._region = region
        self._function_name = function_name
        self._batch_size = batch_size
        self.counters = {"received": 0, "invocations": 0, "deleted": 0, "returned": 0}

    def poll_once(self) -> int:
        """Receive one batch, invoke, delete what succeeded; the number of messages received."""
        messages = self._sqs.receive_message(QueueUrl=self._queue_url, MaxNumberOfMessages=self._batch_size,
                                             WaitTimeSeconds=0, AttributeNames=["All"]).get("Messages", [])
        if not messages:
            return 0
        self.counters["received"] += len(messages)
        delivered = [m["MessageId"] for m in messages]
        context = FunctionContext(function_name=self._function_name, aws_request_id=str(uuid.uuid4()),
                                invoked_function_arn=f"arn:aws:lambda:{self._region}:123456789012:function:"
                                                     f"{self._function_name}")
        self.counters["invocations"] += 1
        try:
            failed = failed_message_ids(self._handler(sqs_event(messages, self._queue_arn, self._region), context),
                                        delivered)
        except Exception:  # noqa: BLE001 - a function error leaves the whole batch on the queue
            log.exception("%s raised; the batch stays on the queue", self._function_name)
            failed = None
        keep = set(delivered if failed is None else failed)
        for message in messages:
            if message["MessageId"] not in keep:
                self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
                self.counters["deleted"] += 1
        self.counters["returned"] += len(keep)
        return len(messages)


class Schedule:
    """Fires a scheduled handler with an EventBridge-shaped 'Scheduled Event'."""

    def __init__(self, handler: Handler, *, rule_arn: str, region: str, function_name: str,
                 clock: Callable[[], float] = time.time) -> None:
        self._handler = handler
        self._rule_arn = rule_arn
        self._region = region
        self._function_name = function_name
        self._clock = clock
        self.fired = 0
        self.last_result: Any = None

    def fire(self) -> Any:
        moment = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._clock()))
        event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
                 "account": "123456789012", "time": moment, "region": self._region,
                 "resources": [self._rule_arn], "detail": {}}
        context = FunctionContext(function_name=self._function_name, aws_request_id=str(uuid.uuid4()),
                                invoked_function_arn=f"arn:aws:lambda:{self._region}:123456789012:function:"
                                                     f"{self._function_name}")
        self.fired += 1
        self.last_result = self._handler(event, context)
        return self.last_result


_UNIT_SECONDS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}


def rate_seconds(expression: Any) -> float:
    """Seconds between runs for a Chalice Rate or a "rate(N unit)" string; cron is not emulated."""
    text = expression.to_string() if hasattr(expression, "to_string") else str(expression)
    if not (text.startswith("rate(") and text.endswith(")")):
        raise ValueError(f"only rate() schedules run locally, not {text}")
    amount, unit = text[5:-1].split()
    return int(amount) * _UNIT_SECONDS[unit]


def app_event_sources(app: Any, *, sqs: Any, region: str, schedule_every: Optional[float],
                      poll_every: float = 0.25,
                      handler_for: Optional[Callable[[str], Handler]] = None) -> List[Repeating]:
    """Threads for every SQS and schedule handler the Chalice app declares (not started). Each
    invokes `handler_for(name)` (function instances), or the app's handler in this process."""
    from chalice.app import ScheduledEventConfig, SQSEventConfig

    threads: List[Repeating] = []
    for source in app.event_sources:
        handler = handler_for(source.name) if handler_for else app.handler_map[source.name]
        if isinstance(source, SQSEventConfig):
            name = (source.queue_arn or "").rsplit(":", 1)[-1] or source.queue
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            consumer = SqsEventSource(sqs, url, arn, handler, region=region, function_name=source.name,
                                      batch_size=source.batch_size)
            threads.append(Repeating(f"sqs-{source.name}", consumer.poll_once, poll_every,
                                     status=functools.partial(_sqs_status, consumer)))
        elif isinstance(source, ScheduledEventConfig):
            every = schedule_every or rate_seconds(source.schedule_expression)
            schedule = Schedule(handler, rule_arn=f"arn:aws:events:{region}:123456789012:rule/{source.name}",
                                region=region, function_name=source.name)
            threads.append(Repeating(f"schedule-{source.name}", schedule.fire, every,
                                     status=functools.partial(_schedule_status, schedule, every)))
    return threads


# Bound with functools.partial (not a closure) so that each thread reports its own source.
def _sqs_status(consumer: SqsEventSource) -> Dict[str, Any]:
    return dict(consumer.counters)


def _schedule_status(schedule: Schedule, every: float) -> Dict[str, Any]:
    return {"every_s": every, "fired": schedule.fired, "last_result": schedule.last_result}
