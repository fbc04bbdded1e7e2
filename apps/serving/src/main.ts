// The entry point. The server's modules (tfjs, sharp, onnxruntime, express) take a second or more to
// load, and a signal in that time used to end the process without a word: until they are loaded, a
// signal is answered here, with the `stopped` line the server writes (pino's JSON shape).
const log = (fields: Record<string, unknown>) =>
  process.stdout.write(`${JSON.stringify({ level: 30, time: Date.now(), pid: process.pid, service: 'serving', ...fields })}\n`);
const stoppedWhileStarting = (signal: NodeJS.Signals) => {
  log({ signal, phase: 'starting', msg: 'stopped' });
  process.exit(0);
};
process.on('SIGTERM', stoppedWhileStarting);
process.on('SIGINT', stoppedWhileStarting);
log({ msg: 'starting' });

try {
  const { serve } = await import('./serve.js');
  // serve() installs its own handlers before its first await, so no signal falls between the two.
  process.off('SIGTERM', stoppedWhileStarting);
  process.off('SIGINT', stoppedWhileStarting);
  await serve();
} catch (error) {
  process.stderr.write(`serving: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
}

export {};
