"""Pre / post periods and the days they hold (design §3.0 "Periods and days").

Days are local calendar days in one time zone (the audit's, or the ad account's report zone for
figures that read the report). With E the first local midnight at or after the enable time and
E⁻ the last at or before it (E = E⁻ when CAPI was enabled exactly at midnight):

- *post* days run from E + `burn_in_days` to the last day covered by every source the figure
  uses, minus `settle_days` (reports are restated and conversions lag);
- *pre* days run from the first day covered by every source to the day before E⁻;
- pre/post comparisons use n whole weeks each side, n = min(⌊pre/7⌋, ⌊post/7⌋): the n·7 days
  just before E⁻ and the first n·7 post days, so each side holds every weekday n times;
- a day inside a period that a source does not cover is a *gap*: listed, never zero-filled.

Pure Python over small inputs (first / last day and the set of covered days per source): the
engine only delivers those.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

ONE = dt.timedelta(days=1)


@dataclass(frozen=True)
class Coverage:
    """Which local days a source covers: first and last day, and the covered days in between
    (None = every day between first and last; a report lists its days, so missing days show)."""

    first: dt.date
    last: dt.date
    days: frozenset[dt.date] | None = None

    def covers(self, day: dt.date) -> bool:
        """True when the source has this day."""
        if day < self.first or day > self.last:
            return False
        return self.days is None or day in self.days


def _span(a: dt.date, b: dt.date) -> list[dt.date]:
    """Every day from a to b inclusive (empty when b < a)."""
    return [a + ONE * i for i in range((b - a).days + 1)] if b >= a else []


def enable_days(enabled_at: dt.datetime, tz: str) -> tuple[dt.date, dt.date]:
    """(E, E⁻) as local dates: the first local midnight at or after the enable time, and the last
    at or before it."""
    local = enabled_at.astimezone(ZoneInfo(tz))
    e_minus = local.date()
    at_midnight = (local.hour, local.minute, local.second, local.microsecond) == (0, 0, 0, 0)
    return (e_minus if at_midnight else e_minus + ONE), e_minus


@dataclass(frozen=True)
class Periods:
    """The days of one figure: pre, post, the whole-week windows, gaps and dropped days."""

    timezone: str
    enable_day: dt.date            # E
    enable_day_before: dt.date     # E⁻
    burn_in_days: int
    settle_days: int
    first_day: dt.date | None      # first day covered by every source
    last_day: dt.date | None       # last day covered by every source
    pre_days: list[dt.date]
    post_days: list[dt.date]
    weeks: int
    pre_window: list[dt.date]
    post_window: list[dt.date]
    burn_in_dropped: list[dt.date]
    settle_dropped: list[dt.date]
    gaps: dict[str, list[dt.date]] = field(default_factory=dict)

    @property
    def window_gaps(self) -> dict[str, list[dt.date]]:
        """Gaps inside the whole-week windows (what makes a pre/post comparison unreliable)."""
        inside = set(self.pre_window) | set(self.post_window)
        return {s: [d for d in g if d in inside] for s, g in self.gaps.items() if any(d in inside for d in g)}

    @property
    def post_gaps(self) -> dict[str, list[dt.date]]:
        """Gaps inside the post days (what makes a post-only figure unreliable)."""
        post = set(self.post_days)
        return {s: [d for d in g if d in post] for s, g in self.gaps.items() if any(d in post for d in g)}

    def summary(self) -> dict[str, Any]:
        """JSON-ready description (dates as ISO strings)."""
        def iso(d: dt.date | None) -> str | None:
            return None if d is None else d.isoformat()

        def first_last(days: list[dt.date]) -> list[str | None]:
            return [iso(days[0]), iso(days[-1])] if days else [None, None]

        return {
            "timezone": self.timezone,
            "enable_day": iso(self.enable_day),
            "burn_in_days": self.burn_in_days,
            "settle_days": self.settle_days,
            "pre_days": len(self.pre_days),
            "post_days": len(self.post_days),
            "post_first_last": first_last(self.post_days),
            "whole_weeks": self.weeks,
            "pre_window": first_last(self.pre_window),
            "post_window": first_last(self.post_window),
            "settle_days_dropped": [iso(d) for d in self.settle_dropped],
            "gaps": {s: [iso(d) for d in g] for s, g in sorted(self.gaps.items())},
        }


def periods(enabled_at: dt.datetime, tz: str, coverage: dict[str, Coverage], *,
            burn_in_days: int = 2, settle_days: int = 3) -> Periods:
    """The periods of a figure whose sources cover the given days (design §3.0)."""
    e, e_minus = enable_days(enabled_at, tz)
    if coverage:
        first = max(c.first for c in coverage.values())
        last = min(c.last for c in coverage.values())
    else:
        first = last = None
    if first is None or last is None or last < first:
        return Periods(tz, e, e_minus, burn_in_days, settle_days, first, last, [], [], 0, [], [], [], [], {})
    pre = _span(first, e_minus - ONE)
    post_start = e + ONE * burn_in_days
    post_end = last - ONE * settle_days
    post = _span(max(post_start, first), post_end)
    burn = [d for d in _span(e, post_start - ONE) if first <= d <= last]
    settle = [d for d in _span(post_end + ONE, last) if d >= post_start]
    n = min(len(pre) // 7, len(post) // 7)
    pre_window = pre[len(pre) - 7 * n:] if n else []
    post_window = post[:7 * n]
    gaps = {}
    for name, c in coverage.items():
        missing = [d for d in pre + post if not c.covers(d)]
        if missing:
            gaps[name] = missing
    return Periods(tz, e, e_minus, burn_in_days, settle_days, first, last, pre, post, n,
                   pre_window, post_window, burn, settle, gaps)
