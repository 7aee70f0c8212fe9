"""The reliability suite (reliability/), small and fast: every scenario on moto at a few hundred
requests, the load scenario on DynamoDB Local too, each on a local stack of its own (devserver's
launcher). `make reliability` runs the same scenarios at full size on both backends; the checks'
own logic is tested on made-up answers in test_reliability_checks.py."""
from __future__ import annotations

import re
from collections import Counter

import pytest

from reliability.report import Result, describe
from reliability.scenarios import crashes, load, outage, owners, poison, throttle

pytestmark = pytest.mark.stack

SEED = 7


def passed(result: Result) -> Result:
    """Assert the scenario passed, showing its whole report if not."""
    print(describe(result))
    assert result.ok, describe(result)
    return result


def injected(faults: str, pattern: str) -> int:
    """A count the fault proxy reported, from the scenario's `faults` line."""
    match = re.search(pattern, faults)
    assert match, (pattern, faults)
    return int(match.group(1))


# --- the scenarios, small ------------------------------------------------------------------------

# moto finishes ~40 requests a second end to end, DynamoDB Local several times that.
@pytest.mark.parametrize("backend, size", [("moto", 150), ("dynamodb-local", 300)])
def test_load_every_request_is_stored_finished_as_dictated_and_run_once(backend, size, tmp_path):
    result = passed(load.run(backend, size, SEED, tmp_path))

    f = result.findings
    assert (f.accepted, f.answers, f.extra_runs) == (size, Counter({202: size}), 0)
    assert len(f.latencies_ms) == size and f.stream_records == 2 * size  # each INSERT and its write-back
    timeline = result.timeline
    assert timeline and (len(timeline.accepted), len(timeline.finished), timeline.refused) == (size, size, [])


def test_crashes_lose_nothing_and_every_duplicate_is_explained_by_a_kill(tmp_path):
    result = passed(crashes.run("moto", 150, SEED, tmp_path, kills=3, app_kills=1))

    assert result.findings.accepted == 150  # the clients' retries outlast the app host's restart
    markers = [line for line in (tmp_path / "runs.txt").read_bytes().splitlines() if line.startswith(crashes.MARKER)]
    assert len(markers) == 4 and sum(line.endswith(b"app host") for line in markers) == 1  # every kill happened
    assert result.timeline and (len(result.timeline.moments), len(result.timeline.windows)) == (3, 1)  # drawn too


def test_throttling_gives_429s_that_store_nothing_and_write_backs_that_land(tmp_path):
    result = passed(throttle.run("moto", 100, SEED, tmp_path))

    f = result.findings
    assert f.answers[429] > 0 and f.accepted > 80  # five tries get nearly all through
    # Write-backs were throttled too, and the requests still finished (passed() above).
    assert sum(injected(result.faults, rf"{operation} (\d+)/") for operation in throttle.WRITE_BACKS) > 0


def test_an_outage_gives_503s_that_store_nothing_and_the_runner_recovers(tmp_path):
    result = passed(outage.run("moto", 150, SEED, tmp_path, send_s=5.0, down_s=1.0))

    assert result.findings.answers[503] > 0
    assert injected(result.faults, r"(\d+) calls answered 503") > 0
    assert injected(result.faults, r"(\d+) calls or connections refused") > 0
    windows = result.timeline.windows if result.timeline else []
    assert [(w.label, round(w.end - w.start, 3)) for w in windows] == [("storage answers 503", 1.0),
                                                                       ("storage refuses connections", 1.0)]


def test_a_poison_request_fails_after_its_retries_and_the_rest_finish(tmp_path):
    result = passed(poison.run("moto", 100, SEED, tmp_path, rate=50.0))

    f = result.findings
    assert f.poison_runs == [11] and len(f.latencies_ms) == 99
    assert result.timeline and [m.label for m in result.timeline.moments] == ["poison request accepted"]


def test_no_producer_reaches_another_owners_requests_and_the_operator_sees_all(tmp_path):
    result = passed(owners.run("moto", 100, SEED, tmp_path))

    f = result.findings
    assert (f.accepted, f.extra_runs, f.cross_owner) == (100, 0, [])
    assert injected(result.faults, r"^(\d+) cross-owner") > 200
    assert result.facts["items"].endswith(" 0 changed by wave 2's attempts")
    assert re.search(r"listed (\d+) of \1 FAILED", result.facts["operator"]), result.facts["operator"]
