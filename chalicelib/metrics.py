"""CloudWatch embedded metric format (EMF) lines: one per batch, written to stdout, which
CloudWatch Logs turns into metrics without any API call from the function."""
from __future__ import annotations

import json
from typing import Dict, List, Mapping, Sequence

NAMESPACE = "storefirst"
DIMENSIONS = {"service": "storefirst"}
COUNTS = ("Processed", "Succeeded", "Failed", "TransientRetries")
LATENCY = "ProcessingLatency"
# EMF takes at most 100 values per metric in one line.
_VALUES_PER_LINE = 100


def emf_lines(counts: Mapping[str, int], latencies_ms: Sequence[int], now_ms: int) -> List[str]:
    """The batch's counts in one line; latency values (ms from createdAt) spread over as many
    lines as EMF's 100-value limit needs."""
    chunks = [list(latencies_ms[i:i + _VALUES_PER_LINE]) for i in range(0, len(latencies_ms), _VALUES_PER_LINE)]
    lines = []
    for position, chunk in enumerate(chunks or [[]]):
        values: Dict[str, object] = {name: counts.get(name, 0) for name in COUNTS} if position == 0 else {}
        definitions = [{"Name": name, "Unit": "Count"} for name in values]
        if chunk:
            values[LATENCY] = chunk
            definitions.append({"Name": LATENCY, "Unit": "Milliseconds"})
        lines.append(json.dumps({
            "_aws": {"Timestamp": now_ms, "CloudWatchMetrics": [
                {"Namespace": NAMESPACE, "Dimensions": [list(DIMENSIONS)], "Metrics": definitions}]},
            **DIMENSIONS, **values,
        }, separators=(",", ":")))
    return lines
