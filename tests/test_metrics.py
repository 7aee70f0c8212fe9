"""The processor's metrics as Powertools writes them: valid EMF, the counts once per batch, latency
values split at EMF's 100 per metric and line (docs: CW-1)."""
import json
from typing import Any, Dict, List

import pytest

from chalicelib.metrics import publish_batch


def emf(out: str) -> List[Dict[str, Any]]:
    return [line for line in map(json.loads, out.splitlines()) if "_aws" in line]


def test_counts_and_latencies_in_one_line(capsys):
    publish_batch({"Processed": 3, "Succeeded": 2, "Failed": 1, "TransientRetries": 0}, [120, 80, 95])

    [blob] = emf(capsys.readouterr().out)
    [directive] = blob["_aws"]["CloudWatchMetrics"]
    assert isinstance(blob["_aws"]["Timestamp"], int)
    assert directive["Namespace"] == "storefirst" and directive["Dimensions"] == [["service"]]
    assert {m["Name"]: m["Unit"] for m in directive["Metrics"]} == {
        "Processed": "Count", "Succeeded": "Count", "Failed": "Count", "TransientRetries": "Count",
        "ProcessingLatency": "Milliseconds"}
    assert (blob["service"], blob["Processed"], blob["ProcessingLatency"]) == ("storefirst", [3.0], [120, 80, 95])


@pytest.mark.parametrize("values, sizes", [(250, [100, 100, 50]), (200, [100, 100]), (100, [100])])
def test_more_than_100_latencies_spread_over_lines_and_counted_once(capsys, values, sizes):
    publish_batch({"Processed": values}, list(range(values)))

    lines = emf(capsys.readouterr().out)
    assert [len(line["ProcessingLatency"]) for line in lines] == sizes
    assert [line.get("Processed") for line in lines] == [[values]] + [None] * (len(sizes) - 1)
    assert sorted(v for line in lines for v in line["ProcessingLatency"]) == list(range(values))
    for line in lines:
        names = [m["Name"] for m in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
        assert all(name in line for name in names) and line["service"] == "storefirst"


def test_a_batch_without_latencies_still_reports_its_counts(capsys):
    publish_batch({"Processed": 1, "TransientRetries": 1}, [])

    [line] = emf(capsys.readouterr().out)
    assert (line["TransientRetries"], line["Failed"]) == ([1.0], [0.0]) and "ProcessingLatency" not in line


def test_batches_do_not_share_a_metric_set(capsys):
    publish_batch({"Processed": 1}, [5])
    publish_batch({"Processed": 2}, [])

    first, second = emf(capsys.readouterr().out)
    assert (first["Processed"], second["Processed"]) == ([1.0], [2.0]) and "ProcessingLatency" not in second
