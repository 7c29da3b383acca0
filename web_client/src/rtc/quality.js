// Connection quality in plain words, from round-trip time and packet loss: the device check's
// verdict and the call's "weak connection" watch use the same thresholds.

/** @typedef {"good" | "fair" | "poor"} Verdict */

// Interactive video stays comfortable below about 150 ms round trip and 2 % loss; past about
// 400 ms or 8 % loss, video freezes and sound breaks up.
const GOOD = { rttMs: 150, lossPct: 2 };
const FAIR = { rttMs: 400, lossPct: 8 };

/**
 * @param {{rttMs: number | null, lossPct: number}} sample
 * @returns {Verdict}
 */
export function verdict({ rttMs, lossPct }) {
  const rtt = rttMs ?? 0;
  if (rtt <= GOOD.rttMs && lossPct <= GOOD.lossPct) return "good";
  if (rtt <= FAIR.rttMs && lossPct <= FAIR.lossPct) return "fair";
  return "poor";
}

/** @type {Record<Verdict, string>} */
export const VERDICT_WORDS = {
  good: "Good: video and sound should be smooth.",
  fair: "Fair: the call should work, though video may sometimes freeze. Moving closer to your Wi-Fi router or pausing downloads can help.",
  poor: "Poor: video will likely freeze, so the call may need to use sound only. Try moving closer to your Wi-Fi router, switching to another network, or using your phone's mobile data.",
};

/**
 * Watches one peer connection's statistics (standard getStats() fields only) and reports the
 * round trip and the loss since the previous sample.
 */
export class StatsWatch {
  /** @param {RTCPeerConnection} pc */
  constructor(pc) {
    this.pc = pc;
    this.lastLost = 0;
    this.lastReceived = 0;
  }

  /** @returns {Promise<{rttMs: number | null, lossPct: number, framesPerSecond: number | null}>} */
  async sample() {
    const report = await this.pc.getStats();
    /** @type {number | null} */
    let rtt = null;
    /** @type {number | null} */
    let remoteFractionLost = null;
    let lost = 0;
    let received = 0;
    /** @type {number | null} */
    let fps = null;
    /** @type {string | null} */
    let selectedPair = null;
    report.forEach((s) => {
      if (s.type === "transport" && s.selectedCandidatePairId) selectedPair = s.selectedCandidatePairId;
    });
    report.forEach((s) => {
      if (s.type === "candidate-pair") {
        const chosen = selectedPair ? s.id === selectedPair : s.nominated && s.state === "succeeded";
        if (chosen && typeof s.currentRoundTripTime === "number") rtt = s.currentRoundTripTime * 1000;
      } else if (s.type === "remote-inbound-rtp") {
        if (typeof s.fractionLost === "number") {
          remoteFractionLost = Math.max(remoteFractionLost ?? 0, s.fractionLost);
        }
        if (rtt === null && typeof s.roundTripTime === "number") rtt = s.roundTripTime * 1000;
      } else if (s.type === "inbound-rtp") {
        lost += s.packetsLost ?? 0;
        received += s.packetsReceived ?? 0;
        if (s.kind === "video" && typeof s.framesPerSecond === "number") fps = s.framesPerSecond;
      }
    });
    const newLost = Math.max(0, lost - this.lastLost);
    const newReceived = Math.max(0, received - this.lastReceived);
    this.lastLost = lost;
    this.lastReceived = received;
    const inboundPct = newLost + newReceived > 0 ? (100 * newLost) / (newLost + newReceived) : 0;
    const outboundPct = (remoteFractionLost ?? 0) * 100;
    return { rttMs: rtt, lossPct: Math.max(inboundPct, outboundPct), framesPerSecond: fps };
  }
}
