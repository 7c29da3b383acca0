"""PHQ-9 and GAD-7: the items, their published scoring and severity bands. Pure.

Both instruments ask how often, over the last two weeks, the patient has been bothered by each
problem, answered 0 (not at all), 1 (several days), 2 (more than half the days) or 3 (nearly
every day). The total is the sum of the items.

- PHQ-9 (Kroenke, Spitzer & Williams 2001): 9 items, total 0-27; minimal 0-4, mild 5-9,
  moderate 10-14, moderately severe 15-19, severe 20-27. Item 9 (thoughts of being better off
  dead or of self-harm) answered above 0 needs a clinician's attention whatever the total:
  :attr:`Score.safety_concern`.
- GAD-7 (Spitzer, Kroenke, Williams & Löwe 2006): 7 items, total 0-21; minimal 0-4, mild 5-9,
  moderate 10-14, severe 15-21.

LOINC codes, for the FHIR export: the PHQ-9 panel is 44249-1 and its total score 44261-6 (44249-1
names the panel, not the score); the GAD-7 panel is 69737-5 and its total score 70274-6. Items
carry their own LOINC question codes, and answers the LOINC answer list LL358-3 (LA6568-5 ...
LA6571-9), shared by both instruments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

MIN_ANSWER: Final = 0
MAX_ANSWER: Final = 3


class Instrument(StrEnum):
    PHQ9 = "phq9"
    GAD7 = "gad7"


class Severity(StrEnum):
    MINIMAL = "minimal"
    MILD = "mild"
    MODERATE = "moderate"
    MODERATELY_SEVERE = "moderately_severe"
    SEVERE = "severe"


@dataclass(frozen=True, slots=True)
class Item:
    loinc: str
    text: str


@dataclass(frozen=True, slots=True)
class Answer:
    value: int
    loinc: str  # LOINC answer code (list LL358-3)
    text: str


@dataclass(frozen=True, slots=True)
class Definition:
    instrument: Instrument
    title: str
    panel_loinc: str
    total_loinc: str
    total_text: str
    items: tuple[Item, ...]
    # (lowest total of the band, band), ascending; the last band runs to the maximum.
    bands: tuple[tuple[int, Severity], ...]

    @property
    def max_total(self) -> int:
        return MAX_ANSWER * len(self.items)


ANSWERS: Final = (
    Answer(0, "LA6568-5", "Not at all"),
    Answer(1, "LA6569-3", "Several days"),
    Answer(2, "LA6570-1", "More than half the days"),
    Answer(3, "LA6571-9", "Nearly every day"),
)

PHQ9: Final = Definition(
    Instrument.PHQ9,
    "PHQ-9 quick depression assessment panel",
    panel_loinc="44249-1",
    total_loinc="44261-6",
    total_text="Patient Health Questionnaire 9 item (PHQ-9) total score",
    items=(
        Item("44250-9", "Little interest or pleasure in doing things"),
        Item("44255-8", "Feeling down, depressed, or hopeless"),
        Item("44259-0", "Trouble falling or staying asleep, or sleeping too much"),
        Item("44254-1", "Feeling tired or having little energy"),
        Item("44251-7", "Poor appetite or overeating"),
        Item(
            "44258-2",
            "Feeling bad about yourself - or that you are a failure or have let yourself or "
            "your family down",
        ),
        Item(
            "44252-5",
            "Trouble concentrating on things, such as reading the newspaper or watching television",
        ),
        Item(
            "44253-3",
            "Moving or speaking so slowly that other people could have noticed. Or the "
            "opposite - being so fidgety or restless that you have been moving around a lot "
            "more than usual",
        ),
        Item(
            "44260-8",
            "Thoughts that you would be better off dead, or of hurting yourself in some way",
        ),
    ),
    bands=(
        (0, Severity.MINIMAL),
        (5, Severity.MILD),
        (10, Severity.MODERATE),
        (15, Severity.MODERATELY_SEVERE),
        (20, Severity.SEVERE),
    ),
)

GAD7: Final = Definition(
    Instrument.GAD7,
    "Generalized anxiety disorder 7 item (GAD-7)",
    panel_loinc="69737-5",
    total_loinc="70274-6",
    total_text="Generalized anxiety disorder 7 item (GAD-7) total score",
    items=(
        Item("69725-0", "Feeling nervous, anxious or on edge"),
        Item("68509-9", "Not being able to stop or control worrying"),
        Item("69733-4", "Worrying too much about different things"),
        Item("69734-2", "Trouble relaxing"),
        Item("69735-9", "Being so restless that it is hard to sit still"),
        Item("69689-8", "Becoming easily annoyed or irritable"),
        Item("69736-7", "Feeling afraid as if something awful might happen"),
    ),
    bands=(
        (0, Severity.MINIMAL),
        (5, Severity.MILD),
        (10, Severity.MODERATE),
        (15, Severity.SEVERE),
    ),
)

DEFINITIONS: Final = {Instrument.PHQ9: PHQ9, Instrument.GAD7: GAD7}

# PHQ-9 item 9, counted from 1 as the form numbers it.
PHQ9_SELF_HARM_ITEM: Final = 9


@dataclass(frozen=True, slots=True)
class Score:
    instrument: Instrument
    answers: tuple[int, ...]
    total: int
    severity: Severity

    @property
    def safety_concern(self) -> bool:
        """PHQ-9 item 9 answered above 0: a clinician must address it."""
        return self.instrument is Instrument.PHQ9 and self.answers[PHQ9_SELF_HARM_ITEM - 1] > 0


def check_answers(instrument: Instrument, answers: Sequence[int]) -> tuple[int, ...]:
    """The answers as a tuple, or ``ValueError`` naming what is wrong (for the person filling
    the form: no answer is echoed)."""
    definition = DEFINITIONS[instrument]
    if len(answers) != len(definition.items):
        raise ValueError(
            f"{definition.title} has {len(definition.items)} items; {len(answers)} were answered"
        )
    for number, value in enumerate(answers, start=1):
        # bool is an int; True is surely a client bug, not "several days".
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"item {number} must be a whole number")
        if not MIN_ANSWER <= value <= MAX_ANSWER:
            raise ValueError(f"item {number} must be between {MIN_ANSWER} and {MAX_ANSWER}")
    return tuple(answers)


def severity_of(instrument: Instrument, total: int) -> Severity:
    definition = DEFINITIONS[instrument]
    if not 0 <= total <= definition.max_total:
        raise ValueError(f"a {definition.title} total is between 0 and {definition.max_total}")
    band = definition.bands[0][1]
    for lowest, severity in definition.bands:
        if total >= lowest:
            band = severity
    return band


def score(instrument: Instrument, answers: Sequence[int]) -> Score:
    checked = check_answers(instrument, answers)
    total = sum(checked)
    return Score(instrument, checked, total, severity_of(instrument, total))
