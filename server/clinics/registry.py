"""The collaborative-care registry's rules, for one patient. Pure: no I/O, ``now`` is passed in.

From a patient's PHQ-9 and GAD-7 history and the care manager's contacts:

- **baseline** is the first score of each instrument in the episode (scores before
  ``episode_start`` are ignored), **latest** the newest; **change** is
  ``(latest - baseline) / baseline`` in percent (negative is better), undefined for a baseline of
  0 and for a single score.
- **weeks in treatment** are whole weeks from the first score of the episode (either instrument).
- **safety**: the latest PHQ-9's item 9 above 0, or a safety flag nobody has addressed yet.
- **not improving**: after ``not_improving_weeks`` or more in treatment, an instrument whose
  latest score is less than ``improvement_target_percent`` below its baseline (a single score
  counts as no improvement; a baseline of 0 cannot improve and is never flagged). Exactly the
  target is enough; exactly the weeks count.
- **overdue contact**: more than ``contact_overdue_days`` since the last contact, or since
  enrolment when there has been none; a patient with neither is overdue.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from server.record.screenings import Instrument

INSTRUMENTS = (Instrument.PHQ9, Instrument.GAD7)


class Flag(StrEnum):
    # In the order a reviewer should see them.
    SAFETY = "safety"
    NOT_IMPROVING = "not_improving"
    OVERDUE_CONTACT = "overdue_contact"


@dataclass(frozen=True, slots=True)
class Rules:
    not_improving_weeks: int = 10
    improvement_target_percent: int = 50
    contact_overdue_days: int = 30

    def __post_init__(self) -> None:
        if self.not_improving_weeks < 1:
            raise ValueError("not_improving_weeks must be at least 1")
        if not 1 <= self.improvement_target_percent <= 100:
            raise ValueError("improvement_target_percent must be between 1 and 100")
        if self.contact_overdue_days < 1:
            raise ValueError("contact_overdue_days must be at least 1")


@dataclass(frozen=True, slots=True)
class ScorePoint:
    instrument: Instrument
    total: int
    at: datetime
    # PHQ-9 item 9 (self-harm), for PHQ-9 scores; None for GAD-7.
    item9: int | None = None


@dataclass(frozen=True, slots=True)
class Trend:
    instrument: Instrument
    baseline: ScorePoint | None
    latest: ScorePoint | None
    count: int

    @property
    def change_percent(self) -> float | None:
        """Change from baseline in percent, rounded to 0.1; negative is better."""
        if self.baseline is None or self.latest is None or self.count < 2:
            return None
        if self.baseline.total == 0:
            return None
        change = (self.latest.total - self.baseline.total) * 100 / self.baseline.total
        return round(change, 1)

    def improved_enough(self, target_percent: int) -> bool | None:
        """At least ``target_percent`` below baseline (exact integer arithmetic); None when the
        question has no answer (no score, or a baseline of 0)."""
        if self.baseline is None or self.latest is None or self.baseline.total == 0:
            return None
        drop = self.baseline.total - self.latest.total
        return drop * 100 >= target_percent * self.baseline.total


@dataclass(frozen=True, slots=True)
class Assessment:
    trends: dict[Instrument, Trend]
    treatment_start: datetime | None
    weeks_in_treatment: int | None
    last_contact: datetime | None
    days_since_contact: int | None
    flags: tuple[Flag, ...]
    # The instruments behind NOT_IMPROVING.
    not_improving: tuple[Instrument, ...]

    @property
    def phq9(self) -> Trend:
        return self.trends[Instrument.PHQ9]

    @property
    def gad7(self) -> Trend:
        return self.trends[Instrument.GAD7]


def trend(instrument: Instrument, scores: Iterable[ScorePoint]) -> Trend:
    mine = sorted((s for s in scores if s.instrument is instrument), key=lambda s: s.at)
    return Trend(instrument, mine[0] if mine else None, mine[-1] if mine else None, count=len(mine))


def assess(
    scores: Sequence[ScorePoint],
    contacts: Sequence[datetime],
    *,
    now: datetime,
    rules: Rules,
    open_safety_flags: int = 0,
    episode_start: datetime | None = None,
    enrolled_at: datetime | None = None,
) -> Assessment:
    episode = [s for s in scores if episode_start is None or s.at >= episode_start]
    trends = {i: trend(i, episode) for i in INSTRUMENTS}
    start = min((s.at for s in episode), default=None)
    weeks = None if start is None else max(0, (now - start) // timedelta(weeks=1))

    flags: list[Flag] = []
    latest_phq9 = trends[Instrument.PHQ9].latest
    if open_safety_flags > 0 or (latest_phq9 is not None and (latest_phq9.item9 or 0) > 0):
        flags.append(Flag.SAFETY)

    lagging: tuple[Instrument, ...] = ()
    if weeks is not None and weeks >= rules.not_improving_weeks:
        lagging = tuple(
            i
            for i in INSTRUMENTS
            if trends[i].improved_enough(rules.improvement_target_percent) is False
        )
        if lagging:
            flags.append(Flag.NOT_IMPROVING)

    last_contact = max(contacts, default=None)
    reference = last_contact or enrolled_at
    days_since = None if last_contact is None else (now - last_contact) // timedelta(days=1)
    if reference is None or now - reference > timedelta(days=rules.contact_overdue_days):
        flags.append(Flag.OVERDUE_CONTACT)

    return Assessment(
        trends=trends,
        treatment_start=start,
        weeks_in_treatment=weeks,
        last_contact=last_contact,
        days_since_contact=days_since,
        flags=tuple(flags),
        not_improving=lagging,
    )
