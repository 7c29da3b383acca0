// The local camera, microphone and screen: asking for them, explaining refusals in plain
// words, and the switches of a call (mute, camera off, screen share). Standard Media Capture
// APIs only (getUserMedia, getDisplayMedia, MediaStreamTrack.enabled).
//
// A missing or blocked camera is not a failure: LocalMedia carries on with whatever it got
// (sound only, or nothing), and says what happened so the page can tell the person.

/**
 * Why a device could not be used.
 * @typedef {"blocked" | "missing" | "busy" | "insecure" | "unsupported" | "other"} DeviceProblem
 */

const VIDEO_CONSTRAINTS = {
  width: { ideal: 640 },
  height: { ideal: 480 },
  frameRate: { ideal: 24, max: 30 },
};
const AUDIO_CONSTRAINTS = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };

/** @param {unknown} error @returns {DeviceProblem} */
export function deviceProblem(error) {
  const name = /** @type {{name?: string}} */ (error)?.name ?? "";
  if (name === "NotAllowedError" || name === "PermissionDeniedError") return "blocked";
  if (name === "NotFoundError" || name === "DevicesNotFoundError" || name === "OverconstrainedError") {
    return "missing";
  }
  if (name === "NotReadableError" || name === "TrackStartError" || name === "AbortError") return "busy";
  if (name === "SecurityError") return "insecure";
  return "other";
}

/** What to tell a person about a device problem, and what to do next. */
export const DEVICE_ADVICE = {
  blocked:
    "Your browser is blocking it: select the camera or lock icon next to the web address, choose Allow for the camera and microphone, then try again.",
  missing: "None was found: plug one in (or use a phone or laptop that has one), then try again.",
  busy: "Another app (a video call, the camera app) may be using it: close that app, then try again.",
  insecure:
    "This page must be opened through a secure (https) address to use it: use the link exactly as the clinic sent it.",
  unsupported:
    "This browser can't do video calls: use a recent version of Chrome, Edge, Firefox or Safari.",
  other: "Something went wrong starting it: reload the page, then try again.",
};

/**
 * @typedef {object} Acquired
 * @property {MediaStream} stream          possibly without tracks
 * @property {DeviceProblem | null} camera  why there is no camera, or null
 * @property {DeviceProblem | null} microphone
 */

/**
 * Ask for the camera and the microphone together (one prompt), and if that fails, for each
 * alone, so a blocked camera still leaves the microphone (and the other way round).
 * @returns {Promise<Acquired>}
 */
export async function acquireCameraAndMic() {
  const devices = navigator.mediaDevices;
  if (!devices?.getUserMedia) {
    const problem = window.isSecureContext ? "unsupported" : "insecure";
    return { stream: new MediaStream(), camera: problem, microphone: problem };
  }
  try {
    const stream = await devices.getUserMedia({ audio: AUDIO_CONSTRAINTS, video: VIDEO_CONSTRAINTS });
    return { stream, camera: null, microphone: null };
  } catch (both) {
    const [audio, video] = await Promise.allSettled([
      devices.getUserMedia({ audio: AUDIO_CONSTRAINTS }),
      devices.getUserMedia({ video: VIDEO_CONSTRAINTS }),
    ]);
    const stream = new MediaStream();
    for (const result of [audio, video]) {
      if (result.status === "fulfilled") result.value.getTracks().forEach((t) => stream.addTrack(t));
    }
    return {
      stream,
      microphone: audio.status === "fulfilled" ? null : deviceProblem(audio.reason ?? both),
      camera: video.status === "fulfilled" ? null : deviceProblem(video.reason ?? both),
    };
  }
}

/** Stop every track of a stream (the camera light goes off). @param {MediaStream | null | undefined} stream */
export function stopStream(stream) {
  stream?.getTracks().forEach((track) => track.stop());
}

/**
 * Show a stream in a <video> and start playing it. Browsers may refuse to play sound before
 * the person has interacted with the page; then the video plays muted and this resolves false
 * (the caller offers a button to turn the sound on).
 *
 * @param {HTMLVideoElement} video
 * @param {MediaStream | null} stream
 * @returns {Promise<boolean>} whether it plays with sound (always true for muted elements)
 */
export async function play(video, stream) {
  if (video.srcObject !== stream) video.srcObject = stream;
  if (!stream) return true;
  try {
    await video.play();
    return true;
  } catch (error) {
    const name = /** @type {{name?: string}} */ (error)?.name;
    if (name === "AbortError") return true; // a newer srcObject or pause() replaced this play()
    if (video.muted) return true;
    video.muted = true;
    try {
      await video.play();
    } catch {
      // Nothing more to try: the poster stays until the next user gesture.
    }
    return false;
  }
}

/** @typedef {"audio" | "video"} Kind */

/**
 * The tracks this page sends: the microphone, the camera, and a screen share that replaces the
 * camera while it lasts. Listeners hear about every change of what to send.
 */
export class LocalMedia {
  /** @param {Acquired} acquired */
  constructor(acquired) {
    this.stream = acquired.stream;
    this.cameraProblem = acquired.camera;
    this.microphoneProblem = acquired.microphone;
    /** @type {MediaStreamTrack | null} */
    this.screen = null;
    this.muted = false;
    this.cameraOff = false;
    /** @type {Set<(kind: Kind, track: MediaStreamTrack | null) => void>} */
    this.listeners = new Set();
    for (const track of this.stream.getTracks()) this.watchEnded(track);
  }

  get microphone() {
    return this.stream.getAudioTracks()[0] ?? null;
  }

  get camera() {
    return this.stream.getVideoTracks()[0] ?? null;
  }

  /** The track to send for a kind right now (null: send nothing). @param {Kind} kind */
  track(kind) {
    if (kind === "audio") return this.microphone;
    return this.screen ?? this.camera;
  }

  get hasCamera() {
    return this.camera !== null;
  }

  get hasMicrophone() {
    return this.microphone !== null;
  }

  /** @param {(kind: Kind, track: MediaStreamTrack | null) => void} listener */
  onTrackChange(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** @param {Kind} kind */
  changed(kind) {
    const track = this.track(kind);
    for (const listener of this.listeners) listener(kind, track);
  }

  /** @param {boolean} muted */
  setMuted(muted) {
    this.muted = muted;
    const mic = this.microphone;
    if (mic) mic.enabled = !muted;
  }

  /** Camera off sends black frames (the others see the camera is off) and frees the light. @param {boolean} off */
  setCameraOff(off) {
    this.cameraOff = off;
    const camera = this.camera;
    if (camera) camera.enabled = !off;
  }

  /** Ask again for a camera or microphone that was missing or blocked. */
  async retry() {
    const wanted = { audio: !this.hasMicrophone, video: !this.hasCamera };
    if (!wanted.audio && !wanted.video) return;
    const fresh = await acquireCameraAndMic();
    for (const track of fresh.stream.getTracks()) {
      const kind = /** @type {Kind} */ (track.kind);
      if ((kind === "audio" && wanted.audio) || (kind === "video" && wanted.video)) {
        this.stream.addTrack(track);
        this.watchEnded(track);
        if (kind === "audio") track.enabled = !this.muted;
        if (kind === "video") track.enabled = !this.cameraOff;
        this.changed(kind);
      } else {
        track.stop();
      }
    }
    if (wanted.video) this.cameraProblem = fresh.camera;
    if (wanted.audio) this.microphoneProblem = fresh.microphone;
  }

  /**
   * Share a screen or window instead of the camera. Resolves false if the person cancelled.
   * @returns {Promise<boolean>}
   */
  async startScreenShare() {
    if (!navigator.mediaDevices?.getDisplayMedia) throw new Error("screen sharing is not supported");
    let shared;
    try {
      shared = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    } catch (error) {
      if (deviceProblem(error) === "blocked") return false; // cancelled in the picker
      throw error;
    }
    const track = shared.getVideoTracks()[0];
    if (!track) return false;
    if ("contentHint" in track) track.contentHint = "detail";
    this.stopScreenShare(false);
    this.screen = track;
    // The browser's own "Stop sharing" bar ends the track.
    track.addEventListener("ended", () => {
      if (this.screen === track) this.stopScreenShare();
    });
    this.changed("video");
    return true;
  }

  stopScreenShare(announce = true) {
    if (!this.screen) return;
    this.screen.stop();
    this.screen = null;
    if (announce) this.changed("video");
  }

  get sharing() {
    return this.screen !== null;
  }

  /** A device unplugged or taken away mid-call: carry on without it. @param {MediaStreamTrack} track */
  watchEnded(track) {
    track.addEventListener("ended", () => {
      if (!this.stream.getTracks().includes(track)) return;
      this.stream.removeTrack(track);
      const kind = /** @type {Kind} */ (track.kind);
      if (kind === "video") this.cameraProblem = "busy";
      else this.microphoneProblem = "busy";
      this.changed(kind);
    });
  }

  stop() {
    this.stopScreenShare(false);
    stopStream(this.stream);
    this.listeners.clear();
  }
}

/**
 * A microphone level for a <meter>, sampled a few times a second. Returns a stop function.
 * @param {MediaStreamTrack} track
 * @param {(level: number) => void} onLevel  0..1
 */
export function watchLevel(track, onLevel) {
  const AudioContextClass = window.AudioContext;
  if (!AudioContextClass) return () => {};
  const context = new AudioContextClass();
  const source = context.createMediaStreamSource(new MediaStream([track]));
  const analyser = context.createAnalyser();
  analyser.fftSize = 512;
  source.connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  const timer = window.setInterval(() => {
    if (context.state === "suspended") context.resume().catch(() => {});
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const s of samples) sum += s * s;
    const rms = Math.sqrt(sum / samples.length);
    onLevel(Math.min(1, rms * 4));
  }, 150);
  return () => {
    window.clearInterval(timer);
    source.disconnect();
    context.close().catch(() => {});
  };
}
