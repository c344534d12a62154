// Alarm tones made with WebAudio (no audio files), repeated while something needs
// attention. Browsers start an AudioContext "suspended" until the user has interacted
// with the page; unlock() (called from any click or key press) resumes it, and
// needsUnlock tells the page to ask for a tap when sound matters but is not allowed yet.

const MUTE_KEY = 'rw.muted';

export class Alarm {
  /**
   * @param {object} opts
   * @param {number} opts.intervalMs  pause between two rings while active
   * @param {Array<[number, number]>} opts.tones  [frequency Hz, duration s] played in turn
   * @param {string} [opts.storageKey] localStorage key of the mute flag
   * @param {function} [opts.onRing] called at every ring, muted or not (e.g. to vibrate)
   */
  constructor({ intervalMs = 3000, tones = [[880, 0.18], [660, 0.18], [880, 0.18]], storageKey = MUTE_KEY, onRing = null } = {}) {
    this.intervalMs = intervalMs;
    this.onRing = onRing;
    this.tones = tones;
    this.storageKey = storageKey;
    this.ctx = null;
    this.timer = null;
    this.muted = false;
    try { this.muted = localStorage.getItem(storageKey) === '1'; } catch { /* ignore */ }
    const unlock = () => this.unlock();
    // Capture phase: the first interaction anywhere on the page counts.
    window.addEventListener('pointerdown', unlock, true);
    window.addEventListener('keydown', unlock, true);
  }

  _context() {
    if (!this.ctx) {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return null;
      this.ctx = new Ctx();
    }
    return this.ctx;
  }

  /** Resume audio after a user gesture (harmless to call often). */
  unlock() {
    const ctx = this._context();
    if (ctx && ctx.state === 'suspended') ctx.resume().catch(() => {});
  }

  /** True while the browser still blocks sound for want of a user gesture. */
  get needsUnlock() {
    const ctx = this._context();
    return !!ctx && ctx.state !== 'running';
  }

  setMuted(m) {
    this.muted = !!m;
    try { localStorage.setItem(this.storageKey, this.muted ? '1' : '0'); } catch { /* ignore */ }
  }

  /** Play the tone sequence once (unless muted), after calling onRing. */
  ring() {
    if (this.onRing) this.onRing();
    if (this.muted) return;
    const ctx = this._context();
    if (!ctx || ctx.state !== 'running') return;
    let at = ctx.currentTime + 0.02;
    for (const [freq, dur] of this.tones) {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = 'square';
      osc.frequency.value = freq;
      // A short attack and release avoid clicks; 0.25 is loud enough without clipping.
      gain.gain.setValueAtTime(0, at);
      gain.gain.linearRampToValueAtTime(0.25, at + 0.01);
      gain.gain.setValueAtTime(0.25, at + dur - 0.03);
      gain.gain.linearRampToValueAtTime(0, at + dur);
      osc.connect(gain).connect(ctx.destination);
      osc.start(at);
      osc.stop(at + dur + 0.01);
      at += dur + 0.05;
    }
  }

  /** Ring now and every intervalMs until stop(); calling it again while active does nothing. */
  start() {
    if (this.timer) return;
    this.ring();
    this.timer = setInterval(() => this.ring(), this.intervalMs);
  }

  stop() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  get active() {
    return this.timer !== null;
  }
}
