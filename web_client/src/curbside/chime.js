// The ringing sound of the on-call dashboard: a two-note chime made with WebAudio (no audio
// file to fetch), repeated while something rings. Browsers may refuse sound until the page has
// been clicked (autoplay policy): then the chime stays silent and the visible alert carries on,
// so nothing here may throw. `unlock()` is called from any click on the dashboard, which lets
// the sound through on the next ring.

const REPEAT_MS = 2500;
const NOTES = [
  { freq: 880, at: 0, length: 0.18 },
  { freq: 660, at: 0.22, length: 0.28 },
];

export class Chime {
  constructor() {
    /** @type {AudioContext | null} */
    this.audio = null;
    /** @type {ReturnType<typeof setInterval> | null} */
    this.timer = null;
  }

  /** The AudioContext, made on first use; null where the browser has none. */
  context() {
    if (this.audio) return this.audio;
    try {
      const Ctor = window.AudioContext ?? /** @type {any} */ (window).webkitAudioContext;
      this.audio = Ctor ? new Ctor() : null;
    } catch {
      this.audio = null;
    }
    return this.audio;
  }

  /** Called from a user gesture: a suspended context may start now. */
  unlock() {
    const audio = this.context();
    if (audio && audio.state === "suspended") audio.resume().catch(() => {});
  }

  get playing() {
    return this.timer !== null;
  }

  start() {
    if (this.timer) return;
    this.ring();
    this.timer = setInterval(() => this.ring(), REPEAT_MS);
  }

  stop() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  close() {
    this.stop();
    this.audio?.close().catch(() => {});
    this.audio = null;
  }

  ring() {
    const audio = this.context();
    if (!audio) return;
    try {
      if (audio.state === "suspended") audio.resume().catch(() => {});
      const start = audio.currentTime + 0.02;
      for (const note of NOTES) {
        const osc = audio.createOscillator();
        const gain = audio.createGain();
        osc.type = "sine";
        osc.frequency.value = note.freq;
        // A short attack and decay: a plain beep clicks at its edges.
        gain.gain.setValueAtTime(0.0001, start + note.at);
        gain.gain.exponentialRampToValueAtTime(0.25, start + note.at + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, start + note.at + note.length);
        osc.connect(gain).connect(audio.destination);
        osc.start(start + note.at);
        osc.stop(start + note.at + note.length + 0.05);
      }
    } catch {
      // Sound is a courtesy here; the visible alert is what must not fail.
    }
  }
}
