"""The admin's curbside report as CSV: one row per consult, what a practice needs to report
interprofessional consult minutes without retyping them. Pure: the caller has the report.

What a row holds, and what it leaves out: the request's id, when it was asked, its mode,
urgency and status; the patient's Liaison id (not their name, MRN or date of birth: the biller
looks the patient up in Liaison, so a lost file names nobody); the PCP's and consultant's ids and
names (the clinicians on the claim); whether consent was recorded; the phase times in whole
seconds; the attested and the reportable consultant minutes, and where the latter come from
(``minutes_source``: ``attested``, ``measured_call``, or ``measured_writing`` for a written
answer's measured time nobody attested); the billing flags. No question, no answer, no clinical
content.

Spreadsheets run a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and some a tab or carriage
return) as a formula, and a clinician's display name is free text: such a cell is written with a
leading ``'`` so that it stays text (OWASP's advice on CSV injection). Numbers here never start
with a sign, so no number is changed by it.

The text starts with a byte-order mark so that spreadsheet programs read it as UTF-8 (names
with accents); it is part of the body, ``charset=utf-8`` still holds.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Final

from server.curbside.views import Report, ReportLine
from signaling import curbside as cs

COLUMNS: Final = (
    "request_id",
    "asked_at",
    "mode",
    "urgency",
    "status",
    "patient_id",
    "pcp_id",
    "pcp_name",
    "consultant_id",
    "consultant_name",
    "consent_recorded",
    "to_answer_s",
    "ringing_s",
    "talking_s",
    "documenting_s",
    "writing_s",
    "attested_minutes",
    "consultant_minutes",
    "minutes_source",
    "billing_flags",
)
FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")
BOM: Final = "\ufeff"
MEDIA_TYPE: Final = "text/csv"


def safe_cell(text: str) -> str:
    """A cell a spreadsheet shows as the text it is, never runs as a formula."""
    return f"'{text}" if text.startswith(FORMULA_START) else text


def report_csv(report: Report) -> str:
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180
    writer.writerow(COLUMNS)
    writer.writerows(map(safe_cell, _cells(line, report.names)) for line in report.lines)
    return out.getvalue()


def filename(report: Report) -> str:
    last = report.until - timedelta(microseconds=1)  # until is exclusive
    return f"curbside-consults-{report.since:%Y%m%d}-{last:%Y%m%d}.csv"


def _cells(line: ReportLine, names: dict[int, str]) -> Iterable[str]:
    row, state = line.row, line.state
    times = cs.consult_times(state)
    consultant = state.accepted_by or state.answered_by
    return (
        str(row.id),
        _instant(state.request.created_at),
        state.request.mode.value,
        state.request.urgency.value,
        state.status.value,
        str(row.patient_id),
        str(row.pcp_id),
        names.get(row.pcp_id, ""),
        "" if consultant is None else str(consultant),
        "" if consultant is None else names.get(consultant, ""),
        "yes" if row.consent_recorded_at is not None else "no",
        _seconds(times.to_answer),
        _seconds(times.ringing),
        _seconds(times.talking),
        _seconds(times.documenting),
        _seconds(times.writing),
        "" if state.attested_minutes is None else str(state.attested_minutes),
        "" if line.consultant is None else f"{line.consultant.minutes:.1f}",
        "" if line.consultant is None else line.consultant.source.value,
        ";".join(line.billing),
    )


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _seconds(span: timedelta | None) -> str:
    return "" if span is None else str(round(span.total_seconds()))
