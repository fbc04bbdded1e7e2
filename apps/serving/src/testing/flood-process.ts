// A flood in a process of its own (see flood.ts), driven over IPC: {start: {url, overview, clients}}
// starts it, 'stop' ends it once every client has its answer and replies with the answers.
import { flood, type FloodAnswer } from './flood.js';

type Command = { start: { url: string; overview: string; clients: number } } | 'stop';

let stopping = false;
let running: Promise<FloodAnswer[]> | undefined;
process.on('message', (command: Command) => {
  if (command === 'stop') {
    stopping = true;
    void running?.then((answers) => process.send!({ answers }));
    return;
  }
  stopping = false;
  running = flood(command.start.url, command.start.overview, command.start.clients, () => stopping);
  process.send!({ started: true });
});
process.on('disconnect', () => process.exit(0));
process.send!({ ready: true });
