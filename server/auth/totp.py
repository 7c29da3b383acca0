"""TOTP second factor (RFC 6238) with pyotp; a code is accepted once and never replayed."""

from __future__ import annotations

from datetime import datetime

import pyotp
import segno

# One step either side tolerates a phone clock that is up to 30 s off.
VALID_WINDOW = 1


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, username: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


def qr_svg(uri: str) -> str:
    # A 4-module quiet zone is what scanners expect; the viewBox lets the page scale it.
    return segno.make(uri, error="m").svg_inline(scale=4, border=4, omitsize=True)


def accepted_step(secret: str, code: str, now: datetime, last_step: int | None) -> int | None:
    """The time step the code belongs to, or None if it is wrong or was already used."""
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if last_step is not None and step <= last_step:
            continue
        if pyotp.utils.strings_equal(totp.generate_otp(step), code):
            return step
    return None
