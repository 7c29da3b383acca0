"""Checking and normalising the demographic fields a patient record and a join page collect.

Pure functions, usable as pydantic validators (each raises ``ValueError`` with a message meant
for the person filling the form). Formats are checked loosely but clearly: enough to catch a
typo, never so strictly that a real phone number or address is refused.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

# The 50 states, DC, and the inhabited territories where US licensure applies.
# fmt: off
US_STATE_CODES = frozenset({
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN",
    "IA", "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV",
    "NH", "NJ", "NM", "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN",
    "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY", "DC", "PR", "GU", "VI", "AS", "MP",
})
# fmt: on

_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*$")
_PHONE_CHARACTERS = re.compile(r"^\+?[0-9 ().-]+$")
MIN_PHONE_DIGITS = 10  # a US number with its area code
MAX_PHONE_DIGITS = 15  # the longest international number (E.164)
EARLIEST_BIRTH = date(1900, 1, 1)


def normalise_language(tag: str) -> str:
    """A BCP-47 tag in its usual case: ``ES-mx`` -> ``es-MX``, ``zh-hant`` -> ``zh-Hant``."""
    tag = tag.strip().replace("_", "-")
    if not _LANGUAGE_TAG.match(tag):
        raise ValueError('give a language tag such as "en", "es" or "pt-BR"')
    primary, *rest = tag.split("-")
    parts = [primary.lower()]
    for sub in rest:
        if len(sub) == 2 and sub.isalpha():
            parts.append(sub.upper())  # region
        elif len(sub) == 4 and sub.isalpha():
            parts.append(sub.title())  # script
        else:
            parts.append(sub.lower())
    return "-".join(parts)


def primary_language(tag: str) -> str:
    return tag.split("-", 1)[0].lower()


def needs_interpreter(preferred_language: str, clinic_language: str) -> bool:
    """Whether the patient's language differs from the clinic's; regions do not count
    (``es-MX`` and ``es`` are the same language for an interpreter)."""
    return primary_language(preferred_language) != primary_language(clinic_language)


def normalise_state(code: str) -> str:
    code = code.strip().upper()
    if code not in US_STATE_CODES:
        raise ValueError('give the two-letter code of a US state or territory, such as "CA"')
    return code


def normalise_phone(number: str) -> str:
    """Digits with the usual separators; kept as written (trimmed), for a person to dial."""
    number = " ".join(number.split())
    if not _PHONE_CHARACTERS.match(number):
        raise ValueError("use only digits, spaces, and + ( ) - . in a phone number")
    digits = sum(c.isdigit() for c in number)
    if not MIN_PHONE_DIGITS <= digits <= MAX_PHONE_DIGITS:
        raise ValueError(
            f"a phone number has {MIN_PHONE_DIGITS} to {MAX_PHONE_DIGITS} digits, "
            "including the area code"
        )
    return number


def normalise_address(address: str) -> str:
    address = " ".join(address.split())
    if len(address) < 5 or not any(c.isalnum() for c in address):
        raise ValueError("give a street address, or the town and state you are in")
    return address


def check_birth_date(born: date, today: date) -> date:
    if not EARLIEST_BIRTH <= born <= today:
        raise ValueError("the date of birth must be a real date, not in the future")
    return born


# For pydantic models; the lengths match the database columns.
LanguageTag = Annotated[str, StringConstraints(max_length=35), AfterValidator(normalise_language)]
StateCode = Annotated[str, StringConstraints(max_length=8), AfterValidator(normalise_state)]
PhoneNumber = Annotated[str, StringConstraints(max_length=32), AfterValidator(normalise_phone)]
Address = Annotated[str, StringConstraints(max_length=500), AfterValidator(normalise_address)]
