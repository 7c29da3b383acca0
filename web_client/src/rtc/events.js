// The `/rtc` socket.io namespace's event names and payloads, mirroring signaling/events.py
// (the server's pydantic models). Names are defined once on each side: change both together.
//
// Every client event is answered with an ack `{ok: true, ...}` or
// `{ok: false, error: {code, message}}`; socket.js turns acks into promises.

export const NAMESPACE = "/rtc";

// Client -> server
export const ROOM_JOIN = "room:join"; //       JoinRoom {visit_id}
export const ROOM_LEAVE = "room:leave"; //     Empty
export const LOBBY_ADMIT = "lobby:admit"; //   LobbyTarget {participant_id}
export const LOBBY_DENY = "lobby:deny"; //     LobbyDeny {participant_id, reason}
export const LOBBY_RETURN = "lobby:return"; // LobbyTarget {participant_id}
export const VISIT_END = "visit:end"; //       Empty
// Curbside consults (signaling/curbside_events.py): CurbsideTarget {request_id}
// A page that rings the psychiatrist (dashboard, consult page) says so, after every connect:
// only such a connection makes them available. Empty
export const CURBSIDE_WATCH = "curbside:watch";
export const CURBSIDE_ACCEPT = "curbside:accept"; //   ack {request_id, visit_id}
export const CURBSIDE_DECLINE = "curbside:decline";
export const CURBSIDE_CANCEL = "curbside:cancel"; //   the requesting PCP
export const CURBSIDE_END = "curbside:end"; //         either party hangs up
// Both ways
export const RTC_SIGNAL = "rtc:signal"; //     out: Signal {to, description | candidate}; in: SignalIn
export const CHAT_MESSAGE = "chat:message"; // out: ChatMessage {text}; in: ChatIn

// Server -> client
export const ROOM_JOINED = "room:joined";
export const ROOM_WAITING = "room:waiting";
export const ROOM_REPLACED = "room:replaced";
export const ROOM_REMOVED = "room:removed";
export const PEER_JOINED = "peer:joined";
export const PEER_LEFT = "peer:left";
export const LOBBY_UPDATE = "lobby:update";
export const VISIT_ENDED = "visit:ended";
export const SESSION_ENDED = "session:ended";
// This server is shutting down (signaling/draining.py): socket.js reconnects, after a random
// delay within reconnect_within_ms, to another server and the page rejoins its room.
export const SERVER_DRAINING = "server:draining"; // ServerDraining
// Curbside consults (server/curbside/notices.py), sent to every socket of the users concerned.
export const CURBSIDE_RING = "curbside:ring"; //           CurbsideRing, to the psychiatrists rung
export const CURBSIDE_TAKEN = "curbside:taken"; //         {request_id}: another psychiatrist accepted
export const CURBSIDE_STOP = "curbside:stop"; //           {request_id, reason: "cancelled" | "escalated"}
export const CURBSIDE_STATUS = "curbside:status"; //       CurbsideStatus, to the PCP
export const CURBSIDE_CONNECTED = "curbside:connected"; // {request_id, visit_id}: join that room

// Limits the server enforces (signaling/events.py): checked here too, so the user is told
// before sending rather than refused after.
export const CHAT_MAX_CHARS = 2000;

/**
 * @typedef {"clinician" | "patient" | "guest"} PeerKind
 * @typedef {{participant_id: string, kind: PeerKind, display_name: string, conn_id: string}} Peer
 * @typedef {{participant_id: string, kind: PeerKind, display_name: string, since: string}} LobbyEntry
 * @typedef {{urls: string | string[], username?: string, credential?: string}} IceServer
 *
 * @typedef {{participant_id: string, kind: PeerKind, display_name: string, until: string,
 *   grace_left_ms: number}} AwayPeer
 *   in the call but dropped: may come back (on a new connection) within grace_left_ms
 *
 * @typedef {{visit_id: number, you: Peer, peers: Peer[], away: AwayPeer[], ice_servers: IceServer[]}} RoomJoined
 *   peers: connected now; away: dropped, keeping their seat; anyone else is gone for good
 * @typedef {{visit_id: number, since: string, returned: boolean}} RoomWaiting
 * @typedef {{visit_id: number, reason: string}} RoomRemoved
 *   reason: a deny reason ("not_recognised", "wrong_visit", "rescheduled", "other") or "link_revoked"
 * @typedef {{visit_id: number, peer: Peer}} PeerJoined
 * @typedef {{visit_id: number, participant_id: string, conn_id: string | null,
 *   reason: "left" | "disconnected" | "replaced" | "returned_to_lobby" | "removed" | "timed_out"}} PeerLeft
 *   conn_id null: they were away (no connection) and their seat is gone for good
 * @typedef {{visit_id: number, waiting: LobbyEntry[]}} LobbyUpdate
 * @typedef {{visit_id: number, status: string}} VisitEnded
 * @typedef {{reason: string}} SessionEnded
 * @typedef {{reconnect_within_ms: number}} ServerDraining
 *
 * @typedef {{id: number, urgency: string, mode: string, question: string, patient_state: string | null,
 *   context: Record<string, any>, pcp: {id: number, display_name: string}, asked_at: string}} RingSummary
 * @typedef {{request: RingSummary, tier: "primary" | "backup", ring_deadline: string | null}} CurbsideRing
 * @typedef {{request_id: number, status: string, detail: string,
 *   psychiatrist: {id: number, display_name: string} | null}} CurbsideStatus
 * @typedef {{request_id: number, visit_id: number}} CurbsideConnected
 *
 * @typedef {{type: "offer" | "answer" | "pranswer" | "rollback", sdp: string}} Description
 * @typedef {{candidate: string, sdpMid?: string | null, sdpMLineIndex?: number | null,
 *   usernameFragment?: string | null}} Candidate
 * @typedef {{from: string, visit_id: number, description?: Description, candidate?: Candidate}} SignalIn
 * @typedef {{visit_id: number, from: string, name: string, text: string, at: string}} ChatIn
 */
