// What a room:joined after our own reconnect means for the peers this page already knew.
// Pure, so that it is tested without a browser (test/rtc.test.js).
//
// The server lists who is in the call now (`peers`, with their current connections) and who
// dropped but keeps their seat (`away`, by participant id: their next connection has a new
// id). Anyone else we knew is gone for good (left, removed, sent back to the lobby, or their
// grace ran out while we were offline): their tile goes at once instead of showing
// "Reconnecting…" until a timer runs out.

/** @typedef {import('./events.js').RoomJoined} RoomJoined */

/**
 * @typedef {object} KnownPeer   what the page holds for one remote participant
 * @property {string | null} participantId   null: an early offerer not yet named (dropped: the
 *   newcomer, we offer afresh to everyone listed)
 * @property {string} connId
 * @property {boolean} linked        has a peer connection that is not closed
 * @property {boolean} connected     that peer connection is connected (media may still flow)
 * @property {boolean} reconnecting  already shown as reconnecting, on its own timer
 *
 * @typedef {{fate: "keep"} | {fate: "drop"} | {fate: "await", graceMs: number | null}} Verdict
 *   keep: in the call now, its link stays (renegotiated if needed); drop: close it and remove the
 *   tile (a listed peer without a live link gets a new one); await: show "Reconnecting…" for
 *   graceMs (null: leave a running timer as it is)
 */

/**
 * @param {KnownPeer[]} known
 * @param {Pick<RoomJoined, "peers"> & {away?: RoomJoined["away"]}} joined
 * @param {number} defaultGraceMs  for a server that does not list the away (older than `away`)
 * @returns {Verdict[]} one per entry of `known`, in order
 */
export function reconcile(known, joined, defaultGraceMs) {
  const present = new Set(joined.peers.map((p) => p.participant_id));
  const away = joined.away && new Map(joined.away.map((a) => [a.participant_id, a.grace_left_ms]));
  return known.map((peer) => {
    if (!peer.participantId) return { fate: "drop" };
    if (present.has(peer.participantId)) return peer.linked ? { fate: "keep" } : { fate: "drop" };
    if (away === undefined) {
      // No list of the away: guess as before, keeping a peer whose media still flows.
      if (peer.reconnecting) return { fate: "await", graceMs: null };
      if (peer.connected) return { fate: "await", graceMs: defaultGraceMs };
      return { fate: "drop" };
    }
    const left = away.get(peer.participantId);
    return left === undefined ? { fate: "drop" } : { fate: "await", graceMs: left };
  });
}

/**
 * Which known peer a peer:left is about: the index into `known`, or -1 (none we know of, e.g.
 * one we dropped already: nothing to do). A live connection is named by its id; someone away
 * has none any more (conn_id null), and their "Reconnecting…" tile is found by who they are.
 * @param {Pick<KnownPeer, "participantId" | "connId">[]} known
 * @param {Pick<import('./events.js').PeerLeft, "participant_id" | "conn_id">} left
 * @returns {number}
 */
export function departed(known, left) {
  if (left.conn_id) return known.findIndex((peer) => peer.connId === left.conn_id);
  return known.findIndex((peer) => peer.participantId === left.participant_id);
}
