/**
 * An AbortController tripped by the first SIGINT / SIGTERM, so a long job stops after the current
 * batch and keeps its checkpoint; a second signal exits at once with 130. Install it before any
 * slow start-up work, so a signal is never ignored.
 */
export function abortOnSignals(log: (line: string) => void, what = 'stopping after the current batch'): AbortController {
  const controller = new AbortController();
  const onSignal = (name: NodeJS.Signals) => {
    if (controller.signal.aborted) {
      log(`\n${name} again: exiting now`);
      process.exit(130);
    }
    log(`\n${name}: ${what} (send it again to exit at once)`);
    controller.abort(new Error(`stopped by ${name}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return controller;
}
