// Summary statistics: nearest-rank percentiles over the samples of all repetitions.
export function summarize(samples) {
  const xs = samples.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (xs.length === 0) return null;
  const rank = (p) => xs[Math.min(xs.length - 1, Math.max(0, Math.ceil((p / 100) * xs.length) - 1))];
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const mid = xs.length >> 1;
  const median = xs.length % 2 ? xs[mid] : (xs[mid - 1] + xs[mid]) / 2;
  return { n: xs.length, median, p95: rank(95), p99: rank(99), mean, min: xs[0], max: xs[xs.length - 1] };
}
