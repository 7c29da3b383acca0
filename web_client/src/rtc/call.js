// A video visit as this page takes part in it: the signaling socket, the room (waiting room or
// call), one PeerLink per other participant (a mesh of up to four), the chat, and the
// clinician's lobby. No DOM here: pages subscribe with `call.on(...)` and render.
//
// Who offers: the newcomer offers to every peer listed in room:joined (as signaling/probe.py
// does); peers already in the call wait for that offer. Perfect negotiation (peer.js) makes any
// later offer from either side safe.
//
// Reconnects: socket.io reconnects by itself (socket.js also after the server let us go, e.g.
// `server:draining` when it shuts down: then to another server); the new connection sends
// room:join again and the server puts an admitted participant straight back in the call
// within its grace window. Its room:joined lists who is in the call and who is away: tiles of
// anyone else (gone for good while we were offline) are dropped at once (roster.js), as is
// the tile of someone away the moment the server says their seat is gone (peer:left). Peer
// connections are kept through a signaling drop (media often keeps flowing); a connection that
// failed or missed a signal meanwhile restarts ICE. A peer whose page was reloaded shows up
// with a new SDP session id, and gets a fresh peer connection.
//
// States:   connecting -> waiting <-> in_call -> ended | removed | replaced | left | refused |
//           signed_out        (`online` is false while the socket is reconnecting)

import * as ev from "./events.js";
import { PeerLink, sdpSessionId } from "./peer.js";
import { verdict } from "./quality.js";
import { departed, reconcile } from "./roster.js";
import { RtcSocket, SignalError } from "./socket.js";

/** @typedef {import('./events.js').Peer} Peer */
/** @typedef {import('./events.js').LobbyEntry} LobbyEntry */
/** @typedef {import('./media.js').LocalMedia} LocalMedia */
/** @typedef {import('./quality.js').Verdict} Verdict */

/**
 * @typedef {"connecting" | "waiting" | "in_call" | "ended" | "removed" | "replaced" | "left" |
 *   "refused" | "signed_out"} CallState
 *
 * @typedef {object} Remote  another participant in the call
 * @property {string | null} participantId   null until peer:joined names an early offerer
 * @property {string} connId
 * @property {string} name
 * @property {import('./events.js').PeerKind | null} kind
 * @property {PeerLink | null} link
 * @property {RTCPeerConnectionState | "reconnecting"} connection
 * @property {Verdict | null} quality
 * @property {boolean} videoPaused   paused by us because the connection to them is weak
 * @property {number} poorSamples
 * @property {number | undefined} dropTimer
 *
 * @typedef {{from: string, name: string, text: string, at: string, mine: boolean}} ChatLine
 *
 * @typedef {object} CallEvents
 * @property {{state: CallState, since?: string, returned?: boolean, reason?: string, code?: string, message?: string}} state
 * @property {Remote[]} remotes
 * @property {LobbyEntry[]} lobby
 * @property {ChatLine} chat
 * @property {boolean} online
 * @property {{kind: "info" | "warning", text: string, whileOffline?: boolean}} notice
 *   whileOffline: true only while the socket is away; withdrawn once it is back
 */

// A peer that dropped is dropped here too if it has not come back within the server's grace
// (room:joined says how much of it is left; this is its default).
const PEER_RETURN_GRACE_MS = 120_000;
const QUALITY_INTERVAL_MS = 2000;
// Consecutive poor samples (about 6 s) before video is paused to keep the sound going.
const POOR_SAMPLES_BEFORE_PAUSE = 3;
const TERMINAL = new Set(["ended", "removed", "refused", "signed_out"]);

export class Call {
  /**
   * @param {object} options
   * @param {number} options.visitId
   * @param {LocalMedia} options.media
   */
  constructor({ visitId, media }) {
    this.visitId = visitId;
    this.media = media;
    /** @type {CallState} */
    this.state = "connecting";
    this.online = false;
    /** @type {Peer | null} */
    this.you = null;
    /** @type {RTCIceServer[]} */
    this.iceServers = [];
    /** @type {Map<string, Remote>} keyed by connection id */
    this.remotes = new Map();
    /** @type {LobbyEntry[]} */
    this.lobby = [];
    /** @type {ChatLine[]} */
    this.chatLines = [];
    /**
     * Candidates from a connection we have no link with yet: the server may relay them ahead
     * of the offer they belong to. Handed to the link the offer creates.
     * @type {Map<string, import('./events.js').SignalIn[]>}
     */
    this.early = new Map();
    /** @type {{[K in keyof CallEvents]?: Set<(detail: CallEvents[K]) => void>}} */
    this.listeners = {};
    this.qualityTimer = window.setInterval(() => this.watchQuality(), QUALITY_INTERVAL_MS);
    this.stopMediaWatch = media.onTrackChange((kind, track) => {
      for (const remote of this.remotes.values()) remote.link?.setTrack(kind, track);
    });
    this.socket = new RtcSocket({
      onConnect: () => {
        this.setOnline(true);
        if (!TERMINAL.has(this.state) && this.state !== "left" && this.state !== "replaced") this.join();
      },
      onDisconnect: () => this.setOnline(false),
      onRefused: (error) => this.refused(error),
      // Media flows between the peers, not through the server: the call carries on while the
      // socket moves, and the rejoin keeps the links (an admitted patient stays admitted).
      onDraining: () => this.emit("notice", { kind: "info", text: "Reconnecting to another Liaison server; your call carries on.", whileOffline: true }),
    });
    this.listen();
  }

  start() {
    this.socket.connect();
  }

  /**
   * @template {keyof CallEvents} K
   * @param {K} type
   * @param {(detail: CallEvents[K]) => void} listener
   * @returns {() => void} unsubscribe
   */
  on(type, listener) {
    const set = /** @type {Set<(detail: CallEvents[K]) => void>} */ (this.listeners[type] ??= /** @type {any} */ (new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  /**
   * @template {keyof CallEvents} K
   * @param {K} type
   * @param {CallEvents[K]} detail
   */
  emit(type, detail) {
    for (const listener of this.listeners[type] ?? []) listener(detail);
  }

  /** @param {CallEvents['state']} detail */
  setState(detail) {
    this.state = detail.state;
    if (detail.state !== "in_call") this.closeLinks();
    if (TERMINAL.has(detail.state)) this.socket.close();
    this.emit("state", detail);
  }

  /** @param {boolean} online */
  setOnline(online) {
    if (this.online === online) return;
    this.online = online;
    this.emit("online", online);
  }

  // --- requests ----------------------------------------------------------------------------

  async join() {
    try {
      await this.socket.request(ev.ROOM_JOIN, { visit_id: this.visitId });
      // room:joined or room:waiting arrived before this ack and set the state.
    } catch (error) {
      const e = /** @type {SignalError} */ (error);
      if (e.code === "offline" || e.code === "timeout") return; // the next connect retries
      if (e.code === "visit_ended" || e.code === "visit_cancelled") {
        this.setState({ state: "ended", code: e.code, message: e.message });
      } else if (e.code === "removed") {
        this.setState({ state: "removed", reason: "removed", message: e.message });
      } else {
        this.setState({ state: "refused", code: e.code, message: e.message });
      }
    }
  }

  /** @param {string} participantId */
  admit(participantId) {
    return this.socket.request(ev.LOBBY_ADMIT, { participant_id: participantId });
  }

  /**
   * @param {string} participantId
   * @param {string} reason  one of the server's deny reasons
   */
  deny(participantId, reason) {
    return this.socket.request(ev.LOBBY_DENY, { participant_id: participantId, reason });
  }

  /** Send an admitted participant back to the waiting room. @param {string} participantId */
  sendBack(participantId) {
    return this.socket.request(ev.LOBBY_RETURN, { participant_id: participantId });
  }

  /** End the visit for everyone (clinicians). */
  async end() {
    await this.socket.request(ev.VISIT_END);
  }

  /** Hang up; others stay. Joining again means waiting to be let in again (patients, guests). */
  async leave() {
    try {
      await this.socket.request(ev.ROOM_LEAVE);
    } finally {
      this.setState({ state: "left" });
    }
  }

  /** Back into the room after leaving, or after this visit was opened in another window. */
  rejoin() {
    this.setState({ state: "connecting" });
    if (this.socket.connected) this.join();
    else this.socket.connect();
  }

  /** @param {string} text */
  async sendChat(text) {
    const ack = await this.socket.request(ev.CHAT_MESSAGE, { text });
    const line = { from: this.you?.participant_id ?? "", name: this.you?.display_name ?? "You", text, at: String(ack.at), mine: true };
    this.chatLines.push(line);
    this.emit("chat", line);
  }

  // --- server events -----------------------------------------------------------------------

  listen() {
    const s = this.socket;
    s.on(ev.ROOM_JOINED, (/** @type {import('./events.js').RoomJoined} */ data) => this.joined(data));
    s.on(ev.ROOM_WAITING, (/** @type {import('./events.js').RoomWaiting} */ data) => {
      this.setState({ state: "waiting", since: data.since, returned: data.returned });
    });
    s.on(ev.PEER_JOINED, (/** @type {import('./events.js').PeerJoined} */ data) => this.peerJoined(data.peer));
    s.on(ev.PEER_LEFT, (/** @type {import('./events.js').PeerLeft} */ data) => this.peerLeft(data));
    s.on(ev.RTC_SIGNAL, (/** @type {import('./events.js').SignalIn} */ data) => this.signal(data));
    s.on(ev.LOBBY_UPDATE, (/** @type {import('./events.js').LobbyUpdate} */ data) => {
      this.lobby = data.waiting;
      this.emit("lobby", this.lobby);
    });
    s.on(ev.CHAT_MESSAGE, (/** @type {import('./events.js').ChatIn} */ data) => {
      const line = { from: data.from, name: data.name, text: data.text, at: data.at, mine: false };
      this.chatLines.push(line);
      this.emit("chat", line);
    });
    s.on(ev.ROOM_REPLACED, () => this.setState({ state: "replaced" }));
    s.on(ev.ROOM_REMOVED, (/** @type {import('./events.js').RoomRemoved} */ data) => {
      this.setState({ state: "removed", reason: data.reason });
    });
    s.on(ev.VISIT_ENDED, (/** @type {import('./events.js').VisitEnded} */ data) => {
      this.setState({ state: "ended", code: data.status });
    });
    s.on(ev.SESSION_ENDED, (/** @type {import('./events.js').SessionEnded} */ data) => {
      this.setState({ state: "signed_out", reason: data.reason });
    });
  }

  /** @param {SignalError} error */
  refused(error) {
    this.setState({ state: "refused", code: error.code, message: error.message });
  }

  /** @param {import('./events.js').RoomJoined} data */
  joined(data) {
    this.you = data.you;
    this.iceServers = data.ice_servers.map((s) => ({ ...s }));
    // Links kept through our own reconnect, to peers still here, stay; a peer the server lists
    // as away keeps its "Reconnecting…" tile for the grace it has left; the rest are gone.
    const remotes = [...this.remotes.values()];
    const known = remotes.map((remote) => ({
      participantId: remote.participantId,
      connId: remote.connId,
      linked: Boolean(remote.link && !remote.link.closed),
      connected: remote.link?.pc.connectionState === "connected",
      reconnecting: remote.connection === "reconnecting",
    }));
    reconcile(known, data, PEER_RETURN_GRACE_MS).forEach((decided, i) => {
      const remote = remotes[i];
      if (decided.fate === "drop") this.dropRemote(remote);
      else if (decided.fate === "await" && decided.graceMs !== null) this.awaitReturn(remote, decided.graceMs);
    });
    this.state = "in_call";
    this.emit("state", { state: "in_call" });
    for (const peer of data.peers) {
      const kept = this.byParticipant(peer.participant_id);
      if (kept?.link) {
        this.rekey(kept, peer);
        if (kept.link.needsRestart || !kept.link.healthy) kept.link.restartIce();
      } else {
        const remote = this.addRemote(peer);
        remote.link = this.newLink(remote);
        remote.link.start(); // the newcomer offers
      }
    }
    this.emitRemotes();
  }

  /** @param {Peer} peer */
  peerJoined(peer) {
    const known = this.byParticipant(peer.participant_id) ?? this.remotes.get(peer.conn_id);
    if (known) {
      // Back after a drop (same page: it keeps its connection), or an early offerer named now.
      this.rekey(known, peer);
      // A signal of ours lost while it was away: our restart brings the link up to date.
      if (known.link?.needsRestart) known.link.restartIce();
    } else {
      this.addRemote(peer); // it offers to us; the link is made when the offer comes
    }
    this.emitRemotes();
  }

  /** @param {import('./events.js').PeerLeft} data */
  peerLeft(data) {
    const remotes = [...this.remotes.values()];
    const remote = remotes[departed(remotes, data)];
    if (!remote) return;
    if (data.reason === "disconnected" && remote.link) this.awaitReturn(remote);
    else this.dropRemote(remote);
    this.emitRemotes();
  }

  /**
   * Keep a dropped peer's link for its return, within the server's grace.
   * @param {Remote} remote
   * @param {number} [graceMs]  what is left of it
   */
  awaitReturn(remote, graceMs = PEER_RETURN_GRACE_MS) {
    remote.connection = "reconnecting";
    window.clearTimeout(remote.dropTimer);
    remote.dropTimer = window.setTimeout(() => {
      if (remote.connection === "reconnecting") {
        this.dropRemote(remote);
        this.emitRemotes();
      }
    }, graceMs);
  }

  /** @param {import('./events.js').SignalIn} data */
  signal(data) {
    if (this.state !== "in_call") return;
    let remote = this.remotes.get(data.from);
    const description = data.description;
    if (!remote) {
      if (data.candidate) {
        const waiting = this.early.get(data.from) ?? [];
        if (waiting.length < 50) waiting.push(data);
        this.early.set(data.from, waiting);
        return;
      }
      if (description?.type !== "offer") return; // an answer for a link we closed
      remote = this.addRemote({ participant_id: "", kind: "guest", display_name: "", conn_id: data.from });
      remote.participantId = null;
      remote.kind = null;
    }
    if (description && remote.link?.remoteSession && sdpSessionId(description.sdp) !== remote.link.remoteSession) {
      // The remote page made a new peer connection (a reload): start over with it.
      remote.link.close();
      remote.link = null;
      if (description.type === "answer") {
        remote.link = this.newLink(remote);
        remote.link.start();
        return;
      }
    }
    if (!remote.link) {
      if (!description) {
        const waiting = this.early.get(data.from) ?? [];
        if (waiting.length < 50) waiting.push(data);
        this.early.set(data.from, waiting);
        return;
      }
      remote.link = this.newLink(remote);
    }
    remote.link.handle(data);
    // Candidates that came before this offer follow it into the link (which keeps them until
    // the description is applied).
    const early = this.early.get(data.from);
    if (early && description) {
      this.early.delete(data.from);
      for (const signal of early) remote.link.handle(signal);
    }
  }

  // --- peers -------------------------------------------------------------------------------

  /** @param {Peer} peer @returns {Remote} */
  addRemote(peer) {
    /** @type {Remote} */
    const remote = {
      participantId: peer.participant_id,
      connId: peer.conn_id,
      name: peer.display_name,
      kind: peer.kind,
      link: null,
      connection: "new",
      quality: null,
      videoPaused: false,
      poorSamples: 0,
      dropTimer: undefined,
    };
    this.remotes.set(peer.conn_id, remote);
    return remote;
  }

  /** @param {Remote} remote @param {Peer} peer */
  rekey(remote, peer) {
    window.clearTimeout(remote.dropTimer);
    this.remotes.delete(remote.connId);
    remote.connId = peer.conn_id;
    remote.participantId = peer.participant_id;
    remote.name = peer.display_name;
    remote.kind = peer.kind;
    if (remote.link) {
      remote.link.remoteConn = peer.conn_id;
      remote.connection = remote.link.pc.connectionState;
    }
    this.remotes.set(peer.conn_id, remote);
  }

  /** @param {Remote} remote */
  dropRemote(remote) {
    this.early.delete(remote.connId);
    window.clearTimeout(remote.dropTimer);
    remote.link?.close();
    this.remotes.delete(remote.connId);
  }

  /** @param {string} participantId */
  byParticipant(participantId) {
    for (const remote of this.remotes.values()) if (remote.participantId === participantId) return remote;
    return undefined;
  }

  /** @param {Remote} remote */
  newLink(remote) {
    /** @type {PeerLink} */
    const link = new PeerLink({
      remoteConn: remote.connId,
      localConn: () => this.socket.id,
      iceServers: this.iceServers,
      localTrack: (kind) => this.media.track(kind),
      hooks: {
        send: (payload) => this.socket.request(ev.RTC_SIGNAL, { to: link.remoteConn, ...payload }),
        onStream: () => this.emitRemotes(),
        onState: (state) => {
          if (remote.link !== link) return;
          if (remote.connection !== "reconnecting" || state === "connected") remote.connection = state;
          this.emitRemotes();
        },
        onProblem: (message, error) => console.warn(`[call] ${message}`, error),
      },
    });
    return link;
  }

  closeLinks() {
    this.early.clear();
    for (const remote of this.remotes.values()) {
      window.clearTimeout(remote.dropTimer);
      remote.link?.close();
    }
    this.remotes.clear();
    this.emitRemotes();
  }

  emitRemotes() {
    this.emit("remotes", [...this.remotes.values()]);
  }

  /** Try video again with someone after it was paused for a weak connection. @param {Remote} remote */
  resumeVideo(remote) {
    remote.videoPaused = false;
    remote.poorSamples = 0;
    remote.link?.pauseVideo(false);
    this.emitRemotes();
  }

  async watchQuality() {
    let changed = false;
    for (const remote of this.remotes.values()) {
      const link = remote.link;
      if (!link || link.pc.connectionState !== "connected") continue;
      let sample;
      try {
        sample = await link.stats.sample();
      } catch {
        continue; // closed meanwhile
      }
      const quality = verdict(sample);
      if (quality !== remote.quality) changed = true;
      remote.quality = quality;
      remote.poorSamples = quality === "poor" ? remote.poorSamples + 1 : 0;
      if (remote.poorSamples >= POOR_SAMPLES_BEFORE_PAUSE && !remote.videoPaused) {
        remote.videoPaused = true;
        link.pauseVideo(true);
        changed = true;
        this.emit("notice", {
          kind: "warning",
          text: `The connection with ${remote.name || "the other person"} is weak, so video is paused and the call carries on with sound only.`,
        });
      }
    }
    if (changed) this.emitRemotes();
  }

  /**
   * Leave nothing running: the page is going away.
   * @param {{leave?: boolean}} [options]  leave: hang up first, so the others don't wait for a
   *   reconnect (a clinician opening another page); a closed tab just disconnects.
   */
  close({ leave = false } = {}) {
    if (leave && this.state === "in_call" && this.socket.connected) {
      this.socket.socket.emit(ev.ROOM_LEAVE, {}); // no ack: the page is leaving
    }
    window.clearInterval(this.qualityTimer);
    this.stopMediaWatch();
    for (const remote of this.remotes.values()) {
      window.clearTimeout(remote.dropTimer);
      remote.link?.close();
    }
    this.remotes.clear();
    this.socket.close();
    this.listeners = {};
  }
}
