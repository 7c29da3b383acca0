"""The telehealth consent a patient accepts before a video visit, and the guests' agreement.

Each text has a version; what a link holder accepted is recorded with its version and time, so
changing a text means giving it a new version (and everyone accepts the new one).
"""

from __future__ import annotations

from dataclasses import dataclass

from server.visits.links import LinkKind


@dataclass(frozen=True)
class ConsentText:
    version: str
    text: str


PATIENT_CONSENT = ConsentText(
    version="patient-telehealth-2026-11",
    text="""\
Consent to a video visit

- Your visit takes place by live video instead of in person. Your clinician may decide that an
  in-person visit is needed instead.
- The video and sound go directly between the people in the visit and are encrypted. The visit
  is not recorded.
- Your clinician will write a note in your health record, as after any visit.
- Join from a private place. Anyone you invite (a family member or an interpreter) will hear
  what is discussed.
- We ask where you are at the start of each visit, and a phone number to call you back, so that
  we can send help to the right place in an emergency and call you if the connection drops.
- A video visit can fail because of the network or a device. If it does, we will call you on
  the number you give.
- You can stop the visit at any time, and you can choose an in-person visit instead.
- In an emergency, call 911. In a mental health crisis, call or text 988.
""",
)

GUEST_CONSENT = ConsentText(
    version="guest-agreement-2026-11",
    text="""\
Joining someone else's video visit

- You have been invited to take part in a patient's video visit.
- Keep what you see and hear in the visit private. Do not record it.
- Join from a private place, where people who were not invited cannot see or hear the visit.
- The clinician may ask you to leave the visit for part of it, or to wait in the waiting room.
""",
)


def consent_for(kind: LinkKind) -> ConsentText:
    return PATIENT_CONSENT if kind is LinkKind.PATIENT else GUEST_CONSENT
