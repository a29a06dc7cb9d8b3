// A microphone level meter: an AnalyserNode on an audio track, read a few times a second.

const INTERVAL_MS = 60;

/**
 * Call `onLevel(level)` (0..1, the RMS of the last samples, scaled) every ~60 ms while the
 * track lives. Returns stop(), which closes the AudioContext.
 */
export function meterLevel(track, onLevel) {
  const Ctx = window.AudioContext || window.webkitAudioContext;
  if (!Ctx || !track) return () => {};
  const ctx = new Ctx();
  ctx.resume().catch(() => {}); // opened from a click: allowed to run
  const source = ctx.createMediaStreamSource(new MediaStream([track]));
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 1024;
  source.connect(analyser); // an analyser needs no output to run: nothing is played back
  const samples = new Float32Array(analyser.fftSize);
  const timer = setInterval(() => {
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const s of samples) sum += s * s;
    onLevel(Math.min(1, Math.sqrt(sum / samples.length) * 4));
  }, INTERVAL_MS);
  return () => {
    clearInterval(timer);
    source.disconnect();
    ctx.close().catch(() => {});
  };
}
