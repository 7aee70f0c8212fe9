"""The processor's metrics, written by Powertools Metrics in CloudWatch's embedded metric format
(EMF): JSON lines on stdout that CloudWatch Logs turns into metrics, with no API call from the function.

Powertools comes from the same public layer as the Logger (docs: LAMBDA-2), so this costs no import
beyond it. Each batch gets a provider of its own rather than the shared `Metrics()` singleton: a
business logic that also uses Powertools Metrics keeps its own set and flush.

EMF takes at most 100 values per metric in one line (docs: CW-1). Powertools writes the set out as
soon as a metric reaches 100 values and starts a new one, so the counts go in first: they are in the
first line, once, and the latencies spread over as many lines as they need.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

from chalicelib.config import SERVICE  # the `service` dimension Powertools adds

NAMESPACE = "storefirst"
COUNTS = ("Processed", "Succeeded", "Failed", "TransientRetries")
LATENCY = "ProcessingLatency"


def publish_batch(counts: Mapping[str, int], latencies_ms: Sequence[int]) -> None:
    """Write one batch's counts (COUNTS, missing ones as 0) and its latencies (ms from createdAt)."""
    metrics = AmazonCloudWatchEMFProvider(namespace=NAMESPACE, service=SERVICE)
    for name in COUNTS:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=counts.get(name, 0))
    for latency in latencies_ms:
        metrics.add_metric(name=LATENCY, unit=MetricUnit.Milliseconds, value=latency)
    if metrics.metric_set:  # empty when the last latency completed a line of 100
        metrics.flush_metrics()
