import cliProgress from 'cli-progress';

export interface ProgressValues {
  loss?: number;
  precision?: number;
  recall?: number;
}

/** One bar per epoch with ETA and running loss / precision / recall; plain periodic lines off a TTY. */
export function createEpochBar(label: string, total: number) {
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} [{bar}] {value}/{total} | {duration_formatted} ETA {eta_formatted} | loss {loss} | P {precision} | R {recall}`,
      barsize: 24,
      hideCursor: true,
      noTTYOutput: true,
      notTTYSchedule: 15_000,
      stream: process.stderr,
      etaBuffer: 20,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  const fmt = (v?: number) => (v === undefined || Number.isNaN(v) ? '-' : v.toFixed(4));
  bar.start(total, 0, { loss: '-', precision: '-', recall: '-' });
  return {
    update(value: number, values: ProgressValues) {
      bar.update(value, { loss: fmt(values.loss), precision: fmt(values.precision), recall: fmt(values.recall) });
    },
    stop() {
      bar.stop();
    },
  };
}
