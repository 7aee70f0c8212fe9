"""The list prices the capacity model uses (US East, USD), each with the fact in docs/pricing.md that
states it and its source. tests/test_capacity.py checks each number appears in its fact."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Tuple


@dataclass(frozen=True)
class Price:
    usd: float  # per `per` units
    per: float
    unit: str
    fact: str  # the docs/pricing.md id

    def of(self, quantity: float) -> float:
        return quantity / self.per * self.usd


@dataclass(frozen=True)
class Tiered:
    """Prices that fall with volume: (units in the tier, price per `per`), the last tier unbounded."""

    tiers: Tuple[Tuple[float, float], ...]
    per: float
    unit: str
    fact: str

    def of(self, quantity: float) -> float:
        cost, left = 0.0, quantity
        for size, usd in self.tiers:
            used = min(left, size)
            cost += used / self.per * usd
            left -= used
            if left <= 0:
                break
        return cost

    @property
    def usd(self) -> float:
        return self.tiers[0][1]


MILLION = 1e6
INF = float("inf")

API_REQUESTS = Tiered(((333e6, 3.50), (667e6, 2.80), (19e9, 2.38), (INF, 1.51)), MILLION, "requests",
                      "PRICE-1")  # (docs: PRICE-1)
DDB_WRITE_UNITS = Price(0.625, MILLION, "write request units", "PRICE-2")  # (docs: PRICE-2)
DDB_READ_UNITS = Price(0.125, MILLION, "read request units", "PRICE-2")  # (docs: PRICE-2)
DDB_STREAM_READS_BY_LAMBDA = Price(0.0, MILLION, "GetRecords calls", "PRICE-3")  # free (docs: PRICE-3)
DDB_STORAGE = Price(0.25, 1.0, "GB-months", "PRICE-4")  # (docs: PRICE-4)
DDB_PITR = Price(0.20, 1.0, "GB-months", "PRICE-4")  # (docs: PRICE-4)
LAMBDA_REQUESTS = Price(0.20, MILLION, "requests", "PRICE-5")  # (docs: PRICE-5)
LAMBDA_GB_SECONDS = Tiered(((6e9, 0.0000166667), (9e9, 0.000015), (INF, 0.0000133334)), 1.0, "GB-seconds",
                           "PRICE-5")  # x86 (docs: PRICE-5)
SQS_REQUESTS = Price(0.40, MILLION, "requests", "PRICE-6")  # (docs: PRICE-6)
S3_PUTS = Price(0.005, 1000, "PUT requests", "PRICE-7")  # (docs: PRICE-7)
S3_GETS = Price(0.0004, 1000, "GET requests", "PRICE-7")  # (docs: PRICE-7)
LOG_INGESTION = Price(0.50, 1.0, "GB ingested", "PRICE-8")  # (docs: PRICE-8)
LOG_STORAGE = Price(0.03, 1.0, "GB-months", "PRICE-8")  # (docs: PRICE-8)
CUSTOM_METRICS = Price(0.30, 1.0, "metric-months", "PRICE-8")  # (docs: PRICE-8)
ALARMS = Price(0.10, 1.0, "alarm-months", "PRICE-8")  # (docs: PRICE-8)
XRAY_TRACES = Price(5.00, MILLION, "traces recorded", "PRICE-9")  # (docs: PRICE-9)

ALL: Sequence[object] = (API_REQUESTS, DDB_WRITE_UNITS, DDB_READ_UNITS, DDB_STREAM_READS_BY_LAMBDA, DDB_STORAGE,
                         DDB_PITR, LAMBDA_REQUESTS, LAMBDA_GB_SECONDS, SQS_REQUESTS, S3_PUTS, S3_GETS, LOG_INGESTION,
                         LOG_STORAGE, CUSTOM_METRICS, ALARMS, XRAY_TRACES)
