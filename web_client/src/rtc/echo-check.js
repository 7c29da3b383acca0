// The network part of the device check: connect to the server's echo peer
// (POST /api/v1/device-check/offer, see signaling/echo.py), send the camera and see it come
// back through the network, then send numbered pings on an unordered, unreliable "probe" data
// channel and count the echoes: round-trip time and packet loss, as a verdict in plain words.
//
// The echo peer's answer carries all its candidates, and so must our offer: we wait for ICE
// gathering to finish before posting it (no trickle).

import { verdict } from "./quality.js";

const PROBE_LABEL = "probe";
const PINGS = 20;
const PING_INTERVAL_MS = 50;
const PING_GRACE_MS = 1000; // a reply later than this after the last ping counts as lost
const GATHER_TIMEOUT_MS = 3000;
const CONNECT_TIMEOUT_MS = 10_000;
const ECHO_VIDEO_TIMEOUT_MS = 5000;

export class EchoCheckError extends Error {
  /**
   * @param {"refused" | "blocked" | "failed"} reason
   *   refused: the server would not run a check for us (its error is in `cause`);
   *   blocked: no connection could be made (a firewall or a network that blocks calls);
   *   failed: anything else
   * @param {string} message
   * @param {unknown} [cause]
   */
  constructor(reason, message, cause) {
    super(message);
    this.name = "EchoCheckError";
    this.reason = reason;
    this.cause = cause;
  }
}

/**
 * @typedef {object} EchoResult
 * @property {number | null} rttMs     median round trip of the pings
 * @property {number} lossPct          pings that never came back
 * @property {import('./quality.js').Verdict} verdict
 * @property {boolean} videoEchoed     our camera came back through the network
 * @property {number} connectMs        from posting the offer to connected
 * @property {() => void} stop          end the echo (it also ends by itself after a minute)
 */

/**
 * @param {object} options
 * @param {(offer: {sdp: string, type: "offer"}) => Promise<{sdp: string, type: "answer"}>} options.post
 * @param {MediaStream} options.stream           what to send (the camera and microphone)
 * @param {(stream: MediaStream) => void} [options.onEcho]  the echoed media, to show it
 * @param {() => void} [options.onEchoEnded]  the echo stopped after the check (the server ends
 *   each echo peer after a minute)
 * @param {AbortSignal} [options.signal]
 * @returns {Promise<EchoResult>}
 */
export async function runEchoCheck({ post, stream, onEcho, onEchoEnded, signal }) {
  const pc = new RTCPeerConnection({ iceServers: [] });
  const abort = () => pc.close();
  signal?.addEventListener("abort", abort);
  let finished = false;
  try {
    for (const track of stream.getTracks()) pc.addTrack(track, stream);
    const echoed = new MediaStream();
    const videoBack = new Promise((resolve) => {
      pc.addEventListener("track", ({ track }) => {
        echoed.addTrack(track);
        onEcho?.(echoed);
        if (track.kind === "video") resolve(track);
      });
    });
    const channel = pc.createDataChannel(PROBE_LABEL, { ordered: false, maxRetransmits: 0 });
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const offer = /** @type {RTCSessionDescription} */ (pc.localDescription);
    const started = performance.now();
    let answer;
    try {
      answer = await post({ sdp: offer.sdp, type: "offer" });
    } catch (error) {
      throw new EchoCheckError("refused", "The server did not run the check.", error);
    }
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    await connected(pc);
    const connectMs = performance.now() - started;
    await opened(channel);
    const pings = await ping(channel);
    const videoEchoed =
      stream.getVideoTracks().length > 0 &&
      (await Promise.race([videoBack.then(() => true), delay(ECHO_VIDEO_TIMEOUT_MS).then(() => false)]));
    // The echo stays on so the person can keep watching themselves come back, until stopped.
    finished = true;
    const stop = () => {
      signal?.removeEventListener("abort", abort);
      pc.close();
    };
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState !== "connected") {
        stop();
        onEchoEnded?.();
      }
    });
    return { ...pings, verdict: verdict(pings), videoEchoed, connectMs, stop };
  } catch (error) {
    if (error instanceof EchoCheckError) throw error;
    if (signal?.aborted) throw error;
    throw new EchoCheckError("failed", "The network check did not finish.", error);
  } finally {
    if (!finished) {
      signal?.removeEventListener("abort", abort);
      pc.close();
    }
  }
}

/** @param {RTCPeerConnection} pc */
function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      pc.removeEventListener("icegatheringstatechange", check);
      window.clearTimeout(timer);
      resolve(undefined);
    };
    const check = () => {
      if (pc.iceGatheringState === "complete") done();
    };
    // Whatever was gathered by then is enough to try (a slow STUN server must not stall us).
    const timer = window.setTimeout(done, GATHER_TIMEOUT_MS);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

/** @param {RTCPeerConnection} pc */
function connected(pc) {
  return new Promise((resolve, reject) => {
    const blocked = () =>
      new EchoCheckError("blocked", "No connection could be made to Liaison's test peer.");
    const timer = window.setTimeout(() => {
      cleanup();
      reject(blocked());
    }, CONNECT_TIMEOUT_MS);
    const check = () => {
      if (pc.connectionState === "connected") {
        cleanup();
        resolve(undefined);
      } else if (pc.connectionState === "failed" || pc.connectionState === "closed") {
        cleanup();
        reject(blocked());
      }
    };
    const cleanup = () => {
      window.clearTimeout(timer);
      pc.removeEventListener("connectionstatechange", check);
    };
    pc.addEventListener("connectionstatechange", check);
    check();
  });
}

/** @param {RTCDataChannel} channel */
function opened(channel) {
  if (channel.readyState === "open") return Promise.resolve();
  return new Promise((resolve, reject) => {
    channel.addEventListener("open", () => resolve(undefined), { once: true });
    channel.addEventListener("close", () => reject(new Error("probe channel closed")), { once: true });
  });
}

/**
 * Numbered pings; each reply's round trip is timed. Duplicates and unknown replies are ignored.
 * @param {RTCDataChannel} channel
 * @returns {Promise<{rttMs: number | null, lossPct: number}>}
 */
async function ping(channel) {
  /** @type {Map<number, number>} */
  const sentAt = new Map();
  /** @type {number[]} */
  const rtts = [];
  /** @param {MessageEvent} event */
  const onMessage = (event) => {
    const seq = Number.parseInt(String(event.data), 10);
    const at = sentAt.get(seq);
    if (at === undefined) return;
    sentAt.delete(seq);
    rtts.push(performance.now() - at);
  };
  channel.addEventListener("message", onMessage);
  for (let seq = 0; seq < PINGS; seq += 1) {
    sentAt.set(seq, performance.now());
    channel.send(String(seq));
    await delay(PING_INTERVAL_MS);
  }
  // Wait for the stragglers, but not longer than the grace.
  const deadline = performance.now() + PING_GRACE_MS;
  while (rtts.length < PINGS && performance.now() < deadline) await delay(25);
  channel.removeEventListener("message", onMessage);
  rtts.sort((a, b) => a - b);
  const median = rtts.length ? rtts[Math.floor(rtts.length / 2)] : null;
  return { rttMs: median, lossPct: (100 * (PINGS - rtts.length)) / PINGS };
}

/** @param {number} ms */
function delay(ms) {
  return new Promise((resolve) => window.setTimeout(resolve, ms));
}
