// Unit tests of the pure parts of the video-visit client, run with Node's own test runner
// (`npm test`, no dependencies): quality verdicts, dates, and PeerLink's negotiation decisions
// against a scripted stand-in for RTCPeerConnection, and what a rejoin does with known peers. The real browser path is covered by
// tests/e2e/test_video_visit.py.

import assert from "node:assert/strict";
import { test } from "node:test";

import { PeerLink, sdpSessionId } from "../src/rtc/peer.js";
import { verdict } from "../src/rtc/quality.js";
import { departed, reconcile } from "../src/rtc/roster.js";
import { isoDate, waitedFor } from "../src/visit/format.js";

// --- a scripted RTCPeerConnection: just the state PeerLink reads ----------------------------

class FakePeerConnection extends EventTarget {
  constructor() {
    super();
    this.signalingState = "stable";
    this.connectionState = "new";
    this.iceConnectionState = "new";
    /** @type {{type: string, sdp: string} | null} */
    this.remoteDescription = null;
    /** @type {{type: string, sdp: string} | null} */
    this.localDescription = null;
    this.applied = /** @type {string[]} */ ([]);
    this.rolledBack = 0;
    this.restarts = 0;
  }

  async setRemoteDescription(description) {
    if (description.type === "offer") {
      if (this.signalingState === "have-local-offer") this.rolledBack += 1; // implicit rollback
      this.signalingState = "have-remote-offer";
    } else {
      this.signalingState = "stable";
    }
    this.remoteDescription = { ...description };
    this.applied.push(`remote:${description.type}`);
  }

  async setLocalDescription() {
    const answering = this.signalingState === "have-remote-offer";
    this.localDescription = { type: answering ? "answer" : "offer", sdp: "o=- 42 1 IN IP4 127.0.0.1\r\n" };
    this.signalingState = answering ? "stable" : "have-local-offer";
    this.applied.push(`local:${this.localDescription.type}`);
  }

  async addIceCandidate(candidate) {
    this.applied.push(`candidate:${candidate.candidate}`);
  }

  getTransceivers() {
    return [];
  }

  addTransceiver() {
    return { direction: "sendrecv", sender: { replaceTrack: async () => {} }, receiver: { track: { kind: "video" } } };
  }

  restartIce() {
    this.restarts += 1;
  }

  close() {}

  async getStats() {
    return new Map();
  }
}

globalThis.RTCPeerConnection = /** @type {any} */ (FakePeerConnection);
globalThis.MediaStream = /** @type {any} */ (class { getTracks() { return []; } addTrack() {} removeTrack() {} });
globalThis.window = /** @type {any} */ (globalThis);

const offer = (session, ufrag = "abcd") => ({ type: "offer", sdp: `v=0\r\no=- ${session} 2 IN IP4 127.0.0.1\r\na=ice-ufrag:${ufrag}\r\n` });
const answer = (session, ufrag = "abcd") => ({ type: "answer", sdp: `v=0\r\no=- ${session} 2 IN IP4 127.0.0.1\r\na=ice-ufrag:${ufrag}\r\n` });
const candidate = (name, ufrag = "abcd") => ({ candidate: `candidate:${name}`, sdpMid: "0", sdpMLineIndex: 0, usernameFragment: ufrag });

/** @param {string} local @param {string} remote */
function link(local, remote) {
  const sent = /** @type {any[]} */ ([]);
  const problems = /** @type {string[]} */ ([]);
  const peer = new PeerLink({
    remoteConn: remote,
    localConn: () => local,
    iceServers: [],
    localTrack: () => null,
    hooks: {
      send: async (payload) => {
        sent.push(payload);
      },
      onStream: () => {},
      onState: () => {},
      onProblem: (message) => problems.push(message),
    },
  });
  return { peer, pc: /** @type {FakePeerConnection} */ (/** @type {unknown} */ (peer.pc)), sent, problems };
}

test("the smaller connection id is the polite peer, on both sides", () => {
  assert.equal(link("aaa", "bbb").peer.polite, true);
  assert.equal(link("bbb", "aaa").peer.polite, false);
});

test("an offer is answered, and the answer is sent", async () => {
  const { peer, pc, sent } = link("aaa", "bbb");
  await peer.handle({ description: offer(7) });
  assert.deepEqual(pc.applied, ["remote:offer", "local:answer"]);
  assert.equal(sent.at(-1).description.type, "answer");
  assert.equal(peer.remoteSession, "7");
});

test("the impolite peer ignores an offer that collides with its own", async () => {
  const { peer, pc, sent } = link("bbb", "aaa");
  await peer.offer(); // our offer is out: have-local-offer
  await peer.handle({ description: offer(7) });
  assert.equal(peer.ignoreOffer, true);
  assert.deepEqual(pc.applied, ["local:offer"]);
  assert.deepEqual(sent.map((s) => s.description?.type), ["offer"]);
});

test("the polite peer rolls its offer back and answers the colliding one", async () => {
  const { peer, pc, sent } = link("aaa", "bbb");
  await peer.offer();
  await peer.handle({ description: offer(7) });
  assert.equal(pc.rolledBack, 1);
  assert.deepEqual(sent.map((s) => s.description?.type), ["offer", "answer"]);
});

test("candidates that overtake their description are applied after it, in order", async () => {
  const { peer, pc } = link("aaa", "bbb");
  await peer.handle({ candidate: candidate("1") });
  await peer.handle({ candidate: candidate("2") });
  assert.deepEqual(pc.applied, []);
  await peer.handle({ description: offer(7) });
  assert.deepEqual(pc.applied, ["remote:offer", "candidate:candidate:1", "candidate:candidate:2", "local:answer"]);
});

test("a candidate of the next ICE session waits for the restart offer that brings it", async () => {
  const { peer, pc } = link("aaa", "bbb");
  await peer.handle({ description: offer(7, "old") });
  await peer.handle({ candidate: candidate("new-1", "new") });
  assert.ok(!pc.applied.includes("candidate:candidate:new-1"));
  await peer.handle({ description: offer(7, "new") });
  assert.ok(pc.applied.includes("candidate:candidate:new-1"));
});

test("an answer completes our offer", async () => {
  const { peer, pc, problems } = link("bbb", "aaa");
  await peer.offer();
  await peer.handle({ description: answer(9) });
  assert.equal(pc.signalingState, "stable");
  assert.deepEqual(problems, []);
});

test("the SDP session id names the remote peer connection", () => {
  assert.equal(sdpSessionId("v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\n"), "4611731400430051336");
  assert.equal(sdpSessionId("v=0\r\n"), "");
});

test("connection verdicts: good, fair, poor", () => {
  assert.equal(verdict({ rttMs: 40, lossPct: 0 }), "good");
  assert.equal(verdict({ rttMs: 150, lossPct: 2 }), "good");
  assert.equal(verdict({ rttMs: 250, lossPct: 0 }), "fair");
  assert.equal(verdict({ rttMs: 40, lossPct: 5 }), "fair");
  assert.equal(verdict({ rttMs: 500, lossPct: 0 }), "poor");
  assert.equal(verdict({ rttMs: null, lossPct: 100 }), "poor");
});

test("dates of birth from month, day and year", () => {
  assert.equal(isoDate("1988", "4", "12"), "1988-04-12");
  assert.equal(isoDate(" 1988 ", "04", "09"), "1988-04-09");
  assert.equal(isoDate("1988", "2", "30"), null);
  assert.equal(isoDate("88", "4", "12"), null);
  assert.equal(isoDate("1988", "13", "1"), null);
  assert.equal(isoDate("", "", ""), null);
});

test("how long someone has waited", () => {
  const now = Date.parse("2026-01-05T10:00:00Z");
  assert.equal(waitedFor("2026-01-05T09:59:30Z", now), "less than a minute");
  assert.equal(waitedFor("2026-01-05T09:59:00Z", now), "1 minute");
  assert.equal(waitedFor("2026-01-05T08:55:00Z", now), "1 hour 5 minutes");
  assert.equal(waitedFor("2026-01-05T10:05:00Z", now), "less than a minute"); // a fast device clock
});

// --- rejoining: which tiles stay -------------------------------------------------------------

/** @param {string} participantId @param {Partial<import('../src/rtc/roster.js').KnownPeer>} [more] */
function known(participantId, more = {}) {
  return { participantId, connId: `old-${participantId}`, linked: true, connected: true, reconnecting: false, ...more };
}

/** @param {string} participantId */
function listed(participantId) {
  return { participant_id: participantId, kind: /** @type {const} */ ("clinician"), display_name: "Dr Ada", conn_id: `new-${participantId}` };
}

/** @param {string} participantId @param {number} left */
function awayFor(participantId, left) {
  return { participant_id: participantId, kind: /** @type {const} */ ("guest"), display_name: "Ina", until: "2026-01-05T10:02:00+00:00", grace_left_ms: left };
}

test("after our own drop, a peer who left for good meanwhile goes at once; the away keep their grace", () => {
  const clinician = known("user:1");
  const interpreterLeft = known("link:11", { connected: false, reconnecting: true });
  const familyAway = known("link:12", { connected: false, reconnecting: true });
  const pcpAwayLiveMedia = known("user:2");
  const result = reconcile(
    [clinician, interpreterLeft, familyAway, pcpAwayLiveMedia],
    { peers: [listed("user:1")], away: [awayFor("link:12", 30_000), awayFor("user:2", 90_000)] },
    120_000,
  );
  assert.deepEqual(result, [
    { fate: "keep" },
    { fate: "drop" },
    { fate: "await", graceMs: 30_000 },
    { fate: "await", graceMs: 90_000 },
  ]);
});

test("a peer whose media still flows is dropped when the server says it is gone", () => {
  assert.deepEqual(reconcile([known("link:11")], { peers: [], away: [] }, 120_000), [{ fate: "drop" }]);
});

test("a listed peer without a live link, and an unnamed early offerer, start afresh", () => {
  const closed = known("user:1", { linked: false, connected: false });
  const unnamed = { ...known("x"), participantId: null };
  assert.deepEqual(reconcile([closed, unnamed], { peers: [listed("user:1")], away: [] }, 120_000), [{ fate: "drop" }, { fate: "drop" }]);
});

test("without a list of the away (an older server), a peer is kept while its media flows", () => {
  const result = reconcile(
    [known("user:1"), known("link:11"), known("link:12", { reconnecting: true, connected: false }), known("link:13", { connected: false })],
    { peers: [listed("user:1")] },
    120_000,
  );
  assert.deepEqual(result, [{ fate: "keep" }, { fate: "await", graceMs: 120_000 }, { fate: "await", graceMs: null }, { fate: "drop" }]);
});

// --- peer:left: whose tile goes ----------------------------------------------------------------

test("a peer:left for someone away, who has no connection, finds their tile by who they are", () => {
  const peers = [known("user:1"), known("link:11", { reconnecting: true, connected: false })];
  assert.equal(departed(peers, { participant_id: "link:11", conn_id: null }), 1);
});

test("a peer:left for a connection names that connection, not whoever holds the identity now", () => {
  // A reload: the old connection leaves (replaced) after the page already knows the new one.
  const peers = [{ participantId: "link:11", connId: "new-link:11" }];
  assert.equal(departed(peers, { participant_id: "link:11", conn_id: "old-link:11" }), -1);
  assert.equal(departed(peers, { participant_id: "link:11", conn_id: "new-link:11" }), 0);
});

test("a peer:left for someone we do not know of is nothing to do", () => {
  assert.equal(departed([known("user:1")], { participant_id: "link:99", conn_id: null }), -1);
  assert.equal(departed([], { participant_id: "link:99", conn_id: "gone" }), -1);
});
