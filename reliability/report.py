"""What a scenario did and what it found, for a person (`describe`) and for the README (`table`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from bench.common import percentile
from reliability.timeline import Timeline
from reliability.verify import Findings

SHOW_IDS = 5  # ids listed per finding; the rest are counted


@dataclass
class Result:
    scenario: str
    backend: str
    size: int
    load: str  # what was sent, e.g. "10,000 PUTs from 32 clients"
    faults: str  # what was injected
    findings: Findings
    runtime_s: float
    state: Path  # logs, runs file, checkpoints
    duplicates_allowed: bool = False
    # Duplicates the scenario could not attribute to an injected fault (crashes: a kill between
    # the logic and the write-back) are violations even where duplicates are allowed.
    unexplained_duplicates: List[str] = field(default_factory=list)
    facts: Dict[str, Any] = field(default_factory=dict)  # scenario-specific measurements
    table_notes: List[str] = field(default_factory=list)  # the few of them the README table shows
    errors: List[str] = field(default_factory=list)  # the harness itself went wrong (a part died...)
    timeline: Optional[Timeline] = None  # for its picture (reliability/timeline.py)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.unexplained_duplicates and \
            self.findings.ok(self.duplicates_allowed)


def _ids(values: List[str]) -> str:
    shown = ", ".join(values[:SHOW_IDS])
    return shown + (f" ... (+{len(values) - SHOW_IDS})" if len(values) > SHOW_IDS else "")


def describe(result: Result) -> str:
    f = result.findings
    answers = ", ".join(f"{status or 'no answer'}: {n}" for status, n in sorted(f.answers.items()))
    lines = [
        f"== {result.scenario} on {result.backend}: {'PASS' if result.ok else 'FAIL'} "
        f"({result.runtime_s:.0f} s; state and logs in {result.state})",
        f"  load     {result.load}",
        f"  faults   {result.faults}",
        f"  answers  {answers}  ({f.accepted} of {f.sent} requests accepted"
        + (f"; {len(f.stored_unconfirmed)} more stored after a 'may or may not be stored' answer"
           if f.stored_unconfirmed else "") + ")",
        f"  found    lost {len(f.lost)}, stuck {len(f.stuck)}, wrong outcome {len(f.wrong_outcome)}, "
        f"duplicated {len(f.duplicated)} ({f.extra_runs} extra runs), stored without 2xx "
        f"{len(f.stored_without_2xx)}, ran without 2xx {len(f.ran_without_2xx)}, never ran {len(f.never_ran)}, "
        f"disallowed answers {len(f.bad_answers)}, unsent {f.unsent}, "
        f"stream records out of order {f.stream_out_of_order}"
        + (f", cross-owner violations {len(f.cross_owner)}" if f.cross_owner else ""),
    ]
    if f.latencies_ms:
        lines.append(f"  latency  PUT->terminal p50 {percentile(f.latencies_ms, 0.5):.0f} ms, "
                     f"p99 {percentile(f.latencies_ms, 0.99):.0f} ms, max {max(f.latencies_ms)} ms"
                     + (" (healthy requests)" if f.poison_runs else ""))
    lines.append(f"  stream   {f.stream_records} records read back, {len(f.redriven)} request(s) re-driven "
                 f"by the reconciler")
    for name, value in result.facts.items():
        lines.append(f"  {name:<8} {value}")
    for label, values in [("LOST", f.lost), ("STUCK", f.stuck), ("WRONG", f.wrong_outcome),
                          ("STORED WITHOUT 2xx", f.stored_without_2xx), ("RAN WITHOUT 2xx", f.ran_without_2xx),
                          ("NEVER RAN", f.never_ran), ("DISALLOWED ANSWER", f.bad_answers),
                          ("CROSS-OWNER", f.cross_owner),
                          ("DUPLICATED" if result.duplicates_allowed else "DUPLICATED (not allowed)", f.duplicated),
                          ("UNEXPLAINED DUPLICATE", result.unexplained_duplicates), ("ERROR", result.errors),
                          ("NOTE", f.notes)]:
        if values:
            lines.append(f"  {label}: {_ids(values)}")
    return "\n".join(lines)


TABLE_HEADER = ("| scenario | backend | load | faults injected | accepted (202) | lost | stuck | duplicated runs "
                "| other findings | runtime | result |\n|---|---|---|---|---|---|---|---|---|---|---|")


def table_row(result: Result) -> str:
    f = result.findings
    other = [f"{name} {len(values)}" for name, values in [
        ("wrong outcome", f.wrong_outcome), ("stored without 2xx", f.stored_without_2xx),
        ("ran without 2xx", f.ran_without_2xx), ("never ran", f.never_ran), ("disallowed answers", f.bad_answers),
        ("cross-owner violations", f.cross_owner),
        ("unexplained duplicates", result.unexplained_duplicates), ("harness errors", result.errors)] if values]
    if f.latencies_ms:
        other.append(f"{'healthy ' if f.poison_runs else ''}PUT->terminal p99 "
                     f"{percentile(f.latencies_ms, 0.99) / 1000:.1f} s, max {max(f.latencies_ms) / 1000:.1f} s")
    other += result.table_notes
    verdict = "pass" if result.ok else "**FAIL**"
    return (f"| {result.scenario} | {result.backend} | {result.load} | {result.faults} | {f.accepted:,} | "
            f"{len(f.lost)} | {len(f.stuck)} | {f.extra_runs} | {'; '.join(other)} | "
            f"{result.runtime_s:.0f} s | {verdict} |")
