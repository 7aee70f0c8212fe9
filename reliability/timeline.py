"""A scenario's timeline and its picture: requests accepted, refused and finished per second, against
the faults the scenario injected (windows: a storage outage, throttling, the app host down) and the
moments it struck (kills, poison requests). `python -m reliability` draws one per scenario and
backend into docs/images/reliability-<scenario>-<backend>.png, which the README shows.

Every time is time.time() seconds on this machine: the clients stamp their attempts with it, the
scenarios their faults, and the items' updatedAt comes from the app host's clock, the same one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, List, Sequence

from bench import figures
from reliability.load import Attempt, Sent
from reliability.verify import Findings

WIDTH_PX, HEIGHT_PX = 900, 260
# Bins are 1 s wide, or wider for long runs: write-backs land a batch at a time, so per-second counts
# of a long run are a comb too dense to read.
MAX_BINS = 120
FAULT_COLOURS = ("#f4a261", "#e76f51", "#9d8df1", "#8ecae6")  # one per kind of window, in order of appearance


@dataclass(frozen=True)
class Window:
    """A fault in force from `start` to `end`."""

    start: float
    end: float
    label: str


@dataclass(frozen=True)
class Moment:
    """Something that struck at `at` (a kill, a poison request accepted)."""

    at: float
    label: str


@dataclass
class Timeline:
    accepted: List[float]  # when each 202 was answered
    refused: List[float]  # when each other answer came, or the connection failed
    finished: List[float]  # when each stored request reached SUCCEEDED or FAILED
    windows: List[Window] = field(default_factory=list)
    moments: List[Moment] = field(default_factory=list)

    @property
    def start(self) -> float:
        return min([*self.accepted, *self.refused, *(w.start for w in self.windows), *(m.at for m in self.moments)],
                   default=0.0)


def answered_at(attempt: Attempt) -> float:
    return attempt.sent_at + attempt.elapsed_ms / 1000


def of_run(sent: Sequence[Sent], findings: Findings, windows: Iterable[Window] = (),
           moments: Iterable[Moment] = ()) -> Timeline:
    """The timeline of a scenario's requests, with what it injected."""
    attempts = [attempt for s in sent for attempt in s.attempts]
    return Timeline(accepted=[answered_at(a) for a in attempts if a.status == 202],
                    refused=[answered_at(a) for a in attempts if a.status != 202],
                    finished=[ms / 1000 for ms in findings.finished_ms],
                    windows=list(windows), moments=list(moments))


def per_second(times: Sequence[float], start: float, bins: int, bin_s: int = 1) -> List[float]:
    """Mean events per second in each of `bins` bins of `bin_s` seconds from `start`."""
    counts = [0] * bins
    for moment in times:
        index = int((moment - start) // bin_s)
        if 0 <= index < bins:
            counts[index] += 1
    return [count / bin_s for count in counts]


def draw(timeline: Timeline, title: str, path: Path) -> Path:
    start = timeline.start
    # The x axis ends with the last request or moment; a fault window still open then is cut there.
    ends = [*timeline.accepted, *timeline.refused, *timeline.finished, *(m.at for m in timeline.moments)]
    span = max(ends, default=start) - start
    bin_s = max(1, math.ceil(span / MAX_BINS))
    bins = int(span // bin_s) + 1
    seconds = bins * bin_s
    drawn, axes = figures.figure(WIDTH_PX, HEIGHT_PX, margins=(0.07, 0.98, 0.17, 0.76))
    colours = dict(zip(dict.fromkeys(w.label for w in timeline.windows), FAULT_COLOURS, strict=False))
    for window in timeline.windows:
        axes.axvspan(window.start - start, window.end - start, color=colours.get(window.label, "#cccccc"),
                     alpha=0.35, linewidth=0, label=window.label)
    for label, times, style in (("accepted (202)", timeline.accepted, "-"), ("finished", timeline.finished, "-"),
                                ("refused or no answer", timeline.refused, ":")):
        if times:
            axes.stairs(per_second(times, start, bins, bin_s), range(0, seconds + 1, bin_s), linestyle=style,
                        linewidth=1.2, label=label)
    for moment in timeline.moments:
        axes.axvline(moment.at - start, color="#b42318", linewidth=0.8, linestyle="--", label=moment.label)
    axes.set(xlim=(0, seconds), xlabel="seconds since the first request",
             ylabel="requests per second" + (f"\n(mean over {bin_s} s)" if bin_s > 1 else ""))
    axes.set_ylim(bottom=0)
    drawn.text(0.07, 0.95, title, va="top", fontsize=figures.FONT_SIZE + 1, fontweight="bold")
    # One legend entry per label (every kill shares one), between the title and the plot: no data there.
    handles, labels = axes.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    axes.legend(unique.values(), unique.keys(), loc="lower left", bbox_to_anchor=(0.0, 1.02), ncol=6,
                frameon=False, borderaxespad=0.0)
    return figures.save(drawn, path)
