"""The closed vocabularies of clinics, the outbox and the registry, shared by the models (as
check constraints), the services and the API. Pure."""

from __future__ import annotations

from enum import StrEnum


class BookingStatus(StrEnum):
    BOOKED = "booked"
    CANCELLED = "cancelled"
    # Moved to another slot: a new booking (and a new visit) replaced it.
    RESCHEDULED = "rescheduled"


class OutboxKind(StrEnum):
    INVITATION = "invitation"
    REMINDER = "reminder"


class ContactKind(StrEnum):
    PHONE = "phone"
    VIDEO = "video"
    IN_PERSON = "in_person"
    MESSAGE = "message"
    CASELOAD_REVIEW = "caseload_review"
