"""A reliability scenario's timeline (reliability/timeline.py) on made-up runs: what counts as
accepted, refused and finished when, and a picture whose size does not move with its data. No stack
is started (test_reliability.py runs the scenarios)."""
from __future__ import annotations

from pathlib import Path

from reliability.load import Attempt, Planned, Sent
from reliability.timeline import Moment, Timeline, Window, draw, of_run, per_second
from reliability.verify import Findings
from tests.conftest import png_size


def test_a_run_is_counted_when_each_answer_came_and_each_request_finished():
    planned = Planned("a", b"{}", "SUCCEEDED")
    tries = [Attempt(503, 100.0, 250.0), Attempt(0, 101.0, 3000.0, "refused"), Attempt(202, 105.0, 500.0)]
    findings = Findings(finished_ms=[106_200])
    window = Window(100.5, 103.0, "storage answers 503")

    timeline = of_run([Sent(planned, tries)], findings, windows=[window])

    assert timeline.accepted == [105.5]
    assert timeline.refused == [100.25, 104.0]
    assert timeline.finished == [106.2]
    assert timeline.start == 100.25 and timeline.windows == [window]


def test_per_second_counts_whole_bins_from_the_start_and_drops_what_falls_outside():
    times = [10.0, 10.9, 11.0, 13.5, 9.0, 20.0]

    assert per_second(times, start=10.0, bins=4) == [2, 1, 0, 1]
    assert per_second(times, start=10.0, bins=2, bin_s=2) == [1.5, 0.5]


def test_the_picture_keeps_its_size_whatever_the_run(tmp_path: Path):
    short = Timeline(accepted=[1.0, 1.5], refused=[], finished=[2.0])
    long = Timeline(accepted=[i / 50 for i in range(20_000)], refused=[100.0 + i / 10 for i in range(50)],
                    finished=[1 + i / 45 for i in range(20_000)],
                    windows=[Window(100.0, 105.0, "storage answers 503"), Window(200.0, 205.0, "refused")],
                    moments=[Moment(50.0 * k, "function instance SIGKILLed") for k in range(1, 8)])

    sizes = {png_size(draw(timeline, "made up", tmp_path / f"{name}.png"))
             for name, timeline in (("short", short), ("long", long))}

    assert sizes == {(900, 260)}
