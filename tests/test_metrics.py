"""Embedded metric format lines: valid EMF, one per batch, latency values split at EMF's 100."""
import json

from chalicelib.metrics import emf_lines


def test_counts_and_latencies_in_one_line():
    [line] = emf_lines({"Processed": 3, "Succeeded": 2, "Failed": 1, "TransientRetries": 0}, [120, 80, 95], 1700)
    blob = json.loads(line)

    [directive] = blob["_aws"]["CloudWatchMetrics"]
    assert blob["_aws"]["Timestamp"] == 1700
    assert directive["Namespace"] == "storefirst" and directive["Dimensions"] == [["service"]]
    assert {m["Name"]: m["Unit"] for m in directive["Metrics"]} == {
        "Processed": "Count", "Succeeded": "Count", "Failed": "Count", "TransientRetries": "Count",
        "ProcessingLatency": "Milliseconds"}
    assert (blob["service"], blob["Processed"], blob["ProcessingLatency"]) == ("storefirst", 3, [120, 80, 95])


def test_more_than_100_latencies_spread_over_lines_and_counted_once():
    lines = [json.loads(line) for line in emf_lines({"Processed": 250}, list(range(250)), 1)]

    assert [len(line["ProcessingLatency"]) for line in lines] == [100, 100, 50]
    assert [line.get("Processed") for line in lines] == [250, None, None]
    for line in lines:
        names = [m["Name"] for m in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
        assert all(name in line for name in names)


def test_a_batch_without_latencies_still_reports_its_counts():
    [line] = emf_lines({"Processed": 1, "TransientRetries": 1}, [], 1)

    assert json.loads(line)["TransientRetries"] == 1 and "ProcessingLatency" not in json.loads(line)
