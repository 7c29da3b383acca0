"""The steps before the waiting room, for patients and for guests, and their order."""

from __future__ import annotations

import pytest

from server.errors import Conflict
from server.visits.links import LinkKind
from server.visits.steps import JoinProgress, JoinStep, completed, remaining, require_turn

V = "consent-v2"
NOTHING = JoinProgress()
VERIFIED = JoinProgress(identity_verified=True)
CONSENTED = JoinProgress(identity_verified=True, consent_version=V)
ALL = JoinProgress(identity_verified=True, consent_version=V, location_recorded=True)


@pytest.mark.parametrize(
    ("progress", "left"),
    [
        (NOTHING, ("identity", "consent", "location")),
        (VERIFIED, ("consent", "location")),
        (CONSENTED, ("location",)),
        (ALL, ()),
    ],
)
def test_a_patient_verifies_consents_and_says_where_they_are(
    progress: JoinProgress, left: tuple[str, ...]
) -> None:
    assert remaining(LinkKind.PATIENT, progress, V) == tuple(JoinStep(s) for s in left)


def test_a_guest_only_consents() -> None:
    assert remaining(LinkKind.GUEST, NOTHING, V) == (JoinStep.CONSENT,)
    assert remaining(LinkKind.GUEST, JoinProgress(consent_version=V), V) == ()


def test_consent_to_an_older_text_does_not_count() -> None:
    old = JoinProgress(identity_verified=True, consent_version="consent-v1", location_recorded=True)
    assert completed(LinkKind.PATIENT, old, V) == (JoinStep.IDENTITY, JoinStep.LOCATION)
    assert remaining(LinkKind.PATIENT, old, V) == (JoinStep.CONSENT,)


@pytest.mark.parametrize(
    ("progress", "step", "next_step"),
    [
        (NOTHING, JoinStep.CONSENT, JoinStep.IDENTITY),
        (NOTHING, JoinStep.LOCATION, JoinStep.IDENTITY),
        (VERIFIED, JoinStep.LOCATION, JoinStep.CONSENT),
    ],
)
def test_a_step_waits_for_the_ones_before_it(
    progress: JoinProgress, step: JoinStep, next_step: JoinStep
) -> None:
    with pytest.raises(Conflict) as refused:
        require_turn(LinkKind.PATIENT, progress, step, V)
    assert refused.value.code == "step_out_of_order"
    assert refused.value.extra == {"next_step": next_step}


@pytest.mark.parametrize("progress", [VERIFIED, CONSENTED, ALL])
@pytest.mark.parametrize("step", list(JoinStep))
def test_a_step_may_be_taken_again_once_its_turn_has_come(
    progress: JoinProgress, step: JoinStep
) -> None:
    done = completed(LinkKind.PATIENT, progress, V)
    order = list(JoinStep)
    if all(s in done for s in order[: order.index(step)]):
        require_turn(LinkKind.PATIENT, progress, step, V)


@pytest.mark.parametrize("step", [JoinStep.IDENTITY, JoinStep.LOCATION])
def test_a_guest_is_not_asked_for_a_birth_date_or_a_location(step: JoinStep) -> None:
    with pytest.raises(Conflict) as refused:
        require_turn(LinkKind.GUEST, NOTHING, step, V)
    assert refused.value.code == "step_not_needed"
