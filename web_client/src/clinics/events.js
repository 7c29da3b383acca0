// The clinics' events on the `/rtc` namespace, mirroring server/clinics/live.py. Server ->
// client only; the socket authenticates by its cookie as for visits (rtc/socket.js).

// {session_id}: to the session psychiatrist's connections whenever a booked visit's room, a
// booking or a waiting-room screening changes: the board refetches.
export const CLINIC_BOARD = "clinic:board";
// {visit_id, kind: "running_late", text}: to patients and guests waiting in a session's visits.
export const VISIT_NOTICE = "visit:notice";
