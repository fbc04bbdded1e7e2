import cliProgress from 'cli-progress';

export interface ProgressValues {
  loss?: number;
  precision?: number;
  recall?: number;
}

export interface ProgressBar {
  update(value: number, values?: ProgressValues): void;
  stop(): void;
}

const fmt = (v?: number) => (v === undefined || Number.isNaN(v) ? '-' : v.toFixed(4));

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '-';
  const s = Math.round(seconds);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/**
 * A progress bar with ETA and, for training, running loss / precision / recall. On a terminal it is a
 * live bar; elsewhere (CI, logs) a plain line at most every `lineIntervalMs`, rendered on update rather
 * than from a timer, because a training loop running synchronous kernels starves timers.
 */
export function createEpochBar(label: string, total: number, options: { metrics?: boolean; lineIntervalMs?: number } = {}): ProgressBar {
  const metrics = options.metrics ?? true;
  const metricFormat = metrics ? ' | loss {loss} | P {precision} | R {recall}' : '';
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        format: `${label} [{bar}] {value}/{total} | {duration_formatted} ETA {eta_formatted}${metricFormat}`,
        barsize: 24, hideCursor: true, stream: process.stderr, etaBuffer: 20, fps: 5,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { loss: '-', precision: '-', recall: '-' });
    return {
      update: (value, values = {}) => bar.update(value, { loss: fmt(values.loss), precision: fmt(values.precision), recall: fmt(values.recall) }),
      stop: () => bar.stop(),
    };
  }
  const started = Date.now();
  const interval = options.lineIntervalMs ?? 15_000;
  let lastLine = started;
  return {
    update(value, values = {}) {
      const now = Date.now();
      if (now - lastLine < interval && value < total) return;
      lastLine = now;
      const elapsed = (now - started) / 1000;
      const eta = value > 0 ? (elapsed / value) * (total - value) : NaN;
      const m = metrics ? ` | loss ${fmt(values.loss)} | P ${fmt(values.precision)} | R ${fmt(values.recall)}` : '';
      process.stderr.write(`${label} ${value}/${total} (${Math.round((value / total) * 100)}%) | ${duration(elapsed)} ETA ${duration(eta)}${m}\n`);
    },
    stop() {},
  };
}
