"""Pure figures of a soak run: seq continuity at the centre, memory slope, request holds,
cyclictest histograms. No I/O here, so `test_analysis.py` can check every rule."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field


@dataclass
class SeqReport:
    """What the centre saw of the gateway's sequence numbers.

    `gaps` lists missing ranges (first, last) inclusive between 1 and `expected_last`
    (the agent's last assigned seq when known, else the highest seen)."""
    messages: int = 0
    with_seq: int = 0
    without_seq: int = 0
    unparsable: int = 0
    distinct: int = 0
    duplicates: int = 0
    first: int | None = None
    last: int | None = None
    expected_last: int | None = None
    missing: int = 0
    gaps: list[tuple[int, int]] = field(default_factory=list)
    by_kind: dict[str, int] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    alarms_raised: dict[str, int] = field(default_factory=dict)
    bollard_causes: dict[str, int] = field(default_factory=dict)
    priority_timeout_max_held_ms: float | None = None
    priority_granted_max_latency_ms: float | None = None
    priority_request_max_latency_ms: float | None = None
    checkout_reasons: dict[str, int] = field(default_factory=dict)


def topic_kind(topic: str, root: str) -> str:
    """`status`, `telemetry`, `event`, `alarm`, `reply` or `other` for a topic under `root`."""
    if not topic.startswith(root + "/"):
        return "other"
    rest = topic[len(root) + 1:]
    head = rest.split("/", 1)[0]
    return head if head in ("status", "telemetry", "event", "alarm", "reply", "cmd") else "other"


def _bump(d: dict[str, int], key: str, n: int = 1) -> None:
    d[key] = d.get(key, 0) + n


def analyse_centre(lines, root: str, expected_last: int | None = None, first_expected: int = 1) -> SeqReport:
    """Parses `mosquitto_sub -v` lines (`topic payload`) and checks the seq set.

    The seq set must be every integer from `first_expected` to `expected_last` (or to the
    highest seen): anything missing is a gap. A seq seen twice is a duplicate (allowed: the
    agent re-publishes after a lost PUBACK; the centre de-duplicates), counted apart."""
    r = SeqReport()
    seen: set[int] = set()
    for raw in lines:
        line = raw.rstrip("\n")
        if not line:
            continue
        topic, _, payload = line.partition(" ")
        r.messages += 1
        kind = topic_kind(topic, root)
        _bump(r.by_kind, kind)
        try:
            obj = json.loads(payload)
        except ValueError:
            r.unparsable += 1
            continue
        if not isinstance(obj, dict):
            r.unparsable += 1
            continue
        seq = obj.get("seq")
        if isinstance(seq, (int, float)) and not isinstance(seq, bool) and float(seq).is_integer():
            s = int(seq)
            r.with_seq += 1
            if s in seen:
                r.duplicates += 1
            else:
                seen.add(s)
        else:
            r.without_seq += 1
        if kind == "event":
            etype = str(obj.get("type", "?"))
            _bump(r.events, etype)
            data = obj.get("data") or {}
            if etype == "bollard.state":
                _bump(r.bollard_causes, f"{data.get('state', '?')}/{data.get('cause', '?')}")
            elif etype == "priority.timeout":
                held = data.get("held_ms")
                if isinstance(held, (int, float)):
                    r.priority_timeout_max_held_ms = max(r.priority_timeout_max_held_ms or 0.0, float(held))
            elif etype == "priority.granted":
                lat = data.get("latency_ms")
                if isinstance(lat, (int, float)):
                    r.priority_granted_max_latency_ms = max(r.priority_granted_max_latency_ms or 0.0, float(lat))
            elif etype == "priority.request":
                lat = data.get("latency_ms")
                if isinstance(lat, (int, float)) and not data.get("delayed"):
                    r.priority_request_max_latency_ms = max(r.priority_request_max_latency_ms or 0.0, float(lat))
            elif etype == "priority.checkout":
                _bump(r.checkout_reasons, str(data.get("reason", "?")))
        elif kind == "alarm" and obj.get("active") is True:
            code = topic.rsplit("/", 1)[-1]
            _bump(r.alarms_raised, code)
    r.distinct = len(seen)
    if seen:
        r.first, r.last = min(seen), max(seen)
    top = max(expected_last or 0, r.last or 0)
    r.expected_last = top if top else None
    if top:
        r.gaps = missing_ranges(seen, first_expected, top)
        r.missing = sum(b - a + 1 for a, b in r.gaps)
    return r


def missing_ranges(seen: set[int], first: int, last: int) -> list[tuple[int, int]]:
    """Inclusive ranges of integers in first...last that are not in `seen`."""
    gaps: list[tuple[int, int]] = []
    start = None
    for s in range(first, last + 1):
        if s not in seen:
            if start is None:
                start = s
        elif start is not None:
            gaps.append((start, s - 1))
            start = None
    if start is not None:
        gaps.append((start, last))
    return gaps


def slope_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value) points, in value units per hour; None with
    fewer than 3 points or no time spread."""
    if len(points) < 3:
        return None
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    sxx = sum((t - mx) ** 2 for t, _ in points)
    if sxx == 0:
        return None
    sxy = sum((t - mx) * (v - my) for t, v in points)
    return sxy / sxx * 3600.0


def on_intervals(samples: list[tuple[float, bool]]) -> list[tuple[float, float]]:
    """(start, duration) of every run of True in time-ordered (t, value) samples. A run still
    on at the last sample ends there. Start is the first sample seen on, end the first seen
    off: durations are right to within one sampling period."""
    out: list[tuple[float, float]] = []
    since = None
    for t, v in samples:
        if v and since is None:
            since = t
        elif not v and since is not None:
            out.append((since, t - since))
            since = None
    if since is not None and samples:
        out.append((since, samples[-1][0] - since))
    return out


@dataclass
class CyclicResult:
    """cyclictest -q -h output: latency histogram (µs -> count), max and overflows."""
    hist: list[tuple[int, int]]
    max_us: int | None
    overflows: int
    samples: int

    def percentile(self, p: float) -> float | None:
        total = self.samples
        if total == 0:
            return None
        target = math.ceil(p / 100 * total)
        seen = 0
        for us, c in self.hist:
            seen += c
            if seen >= target:
                return float(us)
        return float(self.max_us) if self.max_us is not None else None


def parse_cyclictest(text: str) -> CyclicResult:
    """Parses the histogram lines (`000042 000017`) and the `# Max Latencies` /
    `# Histogram Overflows` summary lines of `cyclictest -q -h N` (one thread)."""
    hist: list[tuple[int, int]] = []
    mx = None
    overflows = 0
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
            c = int(parts[1])
            if c:
                hist.append((int(parts[0]), c))
        elif line.startswith("# Max Latencies:") and len(parts) >= 4 and parts[3].isdigit():
            mx = int(parts[3])
        elif line.startswith("# Histogram Overflows:") and len(parts) >= 4 and parts[3].isdigit():
            overflows = int(parts[3])
    return CyclicResult(hist=hist, max_us=mx, overflows=overflows, samples=sum(c for _, c in hist) + overflows)


def smaps_rollup(text: str) -> dict[str, int]:
    """`Rss`, `Pss`, ... in kB from /proc/PID/smaps_rollup."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0].endswith(":") and parts[2] == "kB":
            try:
                out[parts[0][:-1]] = int(parts[1])
            except ValueError:
                pass
    return out
