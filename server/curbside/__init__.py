"""Curbside consults: on-call shifts and licences, presence, requests, the written queue.

    server/api/curbside.py          HTTP handlers: parse, call a service, serialise
    signaling/curbside_events.py    socket events, presence hooks, the per-process scheduler
      -> service.py     CurbsideService: requests from open to acknowledged or completed;
                        decides who may act, writes the audit trail, says whom to tell what
      -> views.py       reading: one request, the written queue, lists, admin metrics
      -> oncall.py      OnCallService: shifts, licences, the admin's licence-rule override,
                        and the on-call roster with presence
         -> signaling/curbside/           the pure routing machine (every transition)
         -> signaling/curbside_store.py     its state in the database, compare-and-set
         -> signaling/curbside_presence.py  dashboard sockets, agreed across processes
      context.py  the record's context a request carries;  billing.py  pure billing checks

Errors are the routing machine's (signaling/curbside/: already_taken, not_rung, ...) and::

    NotFound   request_not_found   no such request, or not one the caller takes part in
               shift_not_found
    Forbidden  not_a_pcp / not_a_psychiatrist   the role cannot do this
               not_your_shift      a psychiatrist managing someone else's shift
    ValidationFailed  note_not_valid, invalid_shift, patient_choice, ...
"""
