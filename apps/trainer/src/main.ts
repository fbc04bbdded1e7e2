#!/usr/bin/env node
// The commands load tfjs, the models and the recipes, which takes seconds; a Ctrl-C or SIGTERM in
// that time must be answered with a line and exit 130, not kill the process without a word (143).
// So the signal handlers come first, from a module that loads nothing else, and the commands after.
import { abortOnSignals } from '@filmgenre/training/interrupt';

const controller = abortOnSignals((line) => console.error(line));
// Until a command starts its work, a stop has nothing to keep: it exits at once.
const stopWhileStarting = () => {
  console.error('[trainer] stopped while starting: nothing was done');
  process.exit(130);
};
controller.signal.addEventListener('abort', stopWhileStarting);
const { runCli } = await import('./cli.js');
runCli(controller.signal, () => controller.signal.removeEventListener('abort', stopWhileStarting));
