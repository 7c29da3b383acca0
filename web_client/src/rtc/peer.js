// One RTCPeerConnection to one remote participant, negotiated with the "perfect negotiation"
// pattern of the WebRTC specification (https://w3c.github.io/webrtc-pc/#perfect-negotiation-example):
// either side may offer at any time (a newcomer's first offer, an ICE restart, a paused video);
// when two offers cross, the impolite side ignores the other's offer and the polite side rolls
// its own back (setRemoteDescription of an offer in have-local-offer rolls back implicitly).
// Politeness is decided by comparing connection ids, so both sides agree without asking.
//
// Media layout: one audio and one video transceiver, both "sendrecv" from the start even when
// there is no track to send yet. A camera that comes later, a screen share or a camera switched
// back on is then sender.replaceTrack(), with no renegotiation. Candidates trickle through
// rtc:signal {to, candidate}. An ICE failure restarts ICE (pc.restartIce()), which renegotiates.

import { StatsWatch } from "./quality.js";

/** @typedef {import('./events.js').Description} Description */
/** @typedef {import('./events.js').Candidate} Candidate */
/** @typedef {import('./media.js').Kind} Kind */

// How long ICE may stay "disconnected" (it often recovers by itself) before an ICE restart.
const DISCONNECTED_GRACE_MS = 4000;
const KINDS = /** @type {const} */ (["audio", "video"]);
const MAX_EARLY_CANDIDATES = 64;

/**
 * @typedef {object} PeerHooks
 * @property {(payload: {description?: Description, candidate?: Candidate}) => Promise<unknown>} send
 *   sends rtc:signal to this peer's current connection
 * @property {(stream: MediaStream) => void} onStream   a remote track arrived (same stream each time)
 * @property {(state: RTCPeerConnectionState) => void} onState
 * @property {(message: string, error: unknown) => void} onProblem  for the console, not the person
 */

/** The session id of an SDP's o= line: constant for the life of the peer connection that made it. @param {string} sdp */
export function sdpSessionId(sdp) {
  return /^o=\S+ (\S+) /m.exec(sdp)?.[1] ?? "";
}

export class PeerLink {
  /**
   * @param {object} options
   * @param {string} options.remoteConn          the remote connection's id
   * @param {() => string} options.localConn      our connection's id (changes after a reconnect)
   * @param {RTCIceServer[]} options.iceServers
   * @param {(kind: Kind) => MediaStreamTrack | null} options.localTrack  what to send now
   * @param {PeerHooks} options.hooks
   */
  constructor({ remoteConn, localConn, iceServers, localTrack, hooks }) {
    this.remoteConn = remoteConn;
    this.localConn = localConn;
    this.localTrack = localTrack;
    this.hooks = hooks;
    this.pc = new RTCPeerConnection({ iceServers, bundlePolicy: "max-bundle" });
    this.remoteStream = new MediaStream();
    this.stats = new StatsWatch(this.pc);
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.settingRemoteAnswer = false;
    this.closed = false;
    /** The remote peer connection's SDP session id, to notice a remote page reload. */
    this.remoteSession = "";
    /** @type {Partial<Record<Kind, RTCRtpTransceiver>>} */
    this.transceivers = {};
    this.videoPaused = false;
    /** A signal could not be sent (signaling was down): restart ICE once it is back. */
    this.needsRestart = false;
    /** @type {number | undefined} */
    this.disconnectedTimer = undefined;
    /** Signals are handled one at a time, in the order they arrived. */
    this.queue = Promise.resolve();
    /**
     * Candidates that arrived before the description they belong to. The server relays each
     * rtc:signal in a task of its own, so a small candidate can overtake a large description.
     * @type {Candidate[]}
     */
    this.earlyCandidates = [];

    const pc = this.pc;
    pc.addEventListener("negotiationneeded", () => this.offer());
    pc.addEventListener("icecandidate", ({ candidate }) => {
      if (candidate) this.send({ candidate: /** @type {Candidate} */ (candidate.toJSON()) });
    });
    pc.addEventListener("track", ({ track }) => {
      if (!this.remoteStream.getTracks().includes(track)) {
        // One track per kind: a renegotiated transceiver brings its same track back.
        for (const old of this.remoteStream.getTracks()) {
          if (old.kind === track.kind) this.remoteStream.removeTrack(old);
        }
        this.remoteStream.addTrack(track);
      }
      this.hooks.onStream(this.remoteStream);
    });
    pc.addEventListener("connectionstatechange", () => this.hooks.onState(pc.connectionState));
    pc.addEventListener("iceconnectionstatechange", () => this.watchIce());
  }

  /** Polite peers give way when offers cross. */
  get polite() {
    return this.localConn() < this.remoteConn;
  }

  /** As the newcomer: make our transceivers; negotiationneeded then sends the offer. */
  start() {
    for (const kind of KINDS) {
      const track = this.localTrack(kind);
      this.transceivers[kind] = this.pc.addTransceiver(track ?? kind, { direction: "sendrecv" });
    }
  }

  /** @param {{description?: Description, candidate?: Candidate}} signal */
  handle(signal) {
    this.queue = this.queue
      .then(() => (signal.description ? this.onDescription(signal.description) : this.onCandidate(signal.candidate)))
      .catch((error) => this.hooks.onProblem("signal could not be applied", error));
    return this.queue;
  }

  /** @param {Description} description */
  async onDescription(description) {
    if (this.closed) return;
    const pc = this.pc;
    const readyForOffer = !this.makingOffer && (pc.signalingState === "stable" || this.settingRemoteAnswer);
    const offerCollision = description.type === "offer" && !readyForOffer;
    this.ignoreOffer = !this.polite && offerCollision;
    if (this.ignoreOffer) return;
    this.settingRemoteAnswer = description.type === "answer";
    try {
      await pc.setRemoteDescription(description); // an offer in have-local-offer rolls ours back
    } finally {
      this.settingRemoteAnswer = false;
    }
    this.remoteSession = sdpSessionId(description.sdp);
    for (const candidate of this.earlyCandidates.splice(0)) await this.onCandidate(candidate);
    if (description.type === "offer") {
      this.adoptTransceivers();
      await pc.setLocalDescription();
      await this.sendLocalDescription();
    }
  }

  /** @param {Candidate | undefined} candidate */
  async onCandidate(candidate) {
    if (this.closed || !candidate) return;
    const remote = this.pc.remoteDescription;
    const ufrag = candidate.usernameFragment;
    if (!remote || (ufrag && !remote.sdp.includes(`a=ice-ufrag:${ufrag}\r\n`))) {
      // Not for the description applied so far: maybe for the next one (an ICE restart's offer
      // still on its way). Kept, a bounded few, until the next description; a candidate of an
      // ICE session that is over simply stays unused.
      this.earlyCandidates.push(candidate);
      if (this.earlyCandidates.length > MAX_EARLY_CANDIDATES) this.earlyCandidates.shift();
      return;
    }
    try {
      await this.pc.addIceCandidate(candidate);
    } catch (error) {
      // Candidates of an offer we ignored are expected to fail.
      if (!this.ignoreOffer) this.hooks.onProblem("ICE candidate refused", error);
    }
  }

  async offer() {
    if (this.closed) return;
    try {
      this.makingOffer = true;
      await this.pc.setLocalDescription();
      await this.sendLocalDescription();
    } catch (error) {
      this.hooks.onProblem("offer failed", error);
    } finally {
      this.makingOffer = false;
    }
  }

  async sendLocalDescription() {
    const local = this.pc.localDescription;
    if (!local) return;
    await this.send({ description: { type: /** @type {Description['type']} */ (local.type), sdp: local.sdp } });
  }

  /** @param {{description?: Description, candidate?: Candidate}} payload */
  async send(payload) {
    try {
      await this.hooks.send(payload);
    } catch (error) {
      // Signaling is down (a reconnect is under way): the rejoin restarts ICE, which sends a
      // fresh offer with everything in it.
      this.needsRestart = true;
      this.hooks.onProblem("signal not sent", error);
    }
  }

  /**
   * As the answerer, the remote's offer created the transceivers: send our tracks on the first
   * audio and the first video one.
   */
  adoptTransceivers() {
    for (const kind of KINDS) {
      if (this.transceivers[kind]) continue;
      const transceiver = this.pc
        .getTransceivers()
        .find((t) => t.receiver.track.kind === kind && t.currentDirection !== "stopped" && t.direction !== "stopped");
      if (!transceiver) continue;
      this.transceivers[kind] = transceiver;
      transceiver.direction = kind === "video" && this.videoPaused ? "inactive" : "sendrecv";
      const track = this.localTrack(kind);
      if (track) transceiver.sender.replaceTrack(track).catch((e) => this.hooks.onProblem("replaceTrack", e));
    }
  }

  /** The local track for a kind changed (camera back, screen share): no renegotiation. @param {Kind} kind @param {MediaStreamTrack | null} track */
  async setTrack(kind, track) {
    const transceiver = this.transceivers[kind];
    if (!transceiver || this.closed) return;
    try {
      await transceiver.sender.replaceTrack(track);
    } catch (error) {
      this.hooks.onProblem("replaceTrack failed", error);
    }
  }

  /** Stop (or resume) video both ways with this peer, to save a weak connection. @param {boolean} paused */
  pauseVideo(paused) {
    this.videoPaused = paused;
    const transceiver = this.transceivers.video;
    if (transceiver && !this.closed) transceiver.direction = paused ? "inactive" : "sendrecv";
  }

  restartIce() {
    if (this.closed) return;
    this.needsRestart = false;
    this.pc.restartIce();
  }

  watchIce() {
    const state = this.pc.iceConnectionState;
    window.clearTimeout(this.disconnectedTimer);
    if (state === "failed") {
      this.restartIce();
    } else if (state === "disconnected") {
      this.disconnectedTimer = window.setTimeout(() => {
        if (this.pc.iceConnectionState === "disconnected") this.restartIce();
      }, DISCONNECTED_GRACE_MS);
    }
  }

  /** @returns {boolean} */
  get healthy() {
    return this.pc.connectionState === "connected" || this.pc.connectionState === "connecting" || this.pc.connectionState === "new";
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    window.clearTimeout(this.disconnectedTimer);
    this.pc.close();
    for (const track of this.remoteStream.getTracks()) this.remoteStream.removeTrack(track);
  }
}
