/**
 * Replays early stopping at other patiences on the validation-loss histories a run's heads saved in
 * their checkpoints (`<models>/.checkpoints/<key>/fold-*-bag-*\/last/state.json`): for each patience,
 * how many heads would keep the best epoch they had, and how many epochs all of them would train.
 * One JSON line per (model, patience):
 *
 *   npx tsx packages/training/bench/patience.ts --checkpoints models/.checkpoints [--keys cnn,sentence]
 */
import { parseCommandLine } from '@filmgenre/core';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';

const options = parseCommandLine(z.object({
  checkpoints: z.string().describe('a models directory\'s .checkpoints'),
  keys: z.array(z.string()).default(['cnn', 'sentence']).describe('models'),
}), 'patience [options]: early stopping replayed at patiences 1-4 on saved validation losses');

for (const key of options.keys) {
  const dir = join(options.checkpoints, key);
  const heads = readdirSync(dir).filter((d) => existsSync(join(dir, d, 'last', 'state.json'))).sort()
    .map((d) => JSON.parse(readFileSync(join(dir, d, 'last', 'state.json'), 'utf8')) as { history: { valLoss: number }[]; bestEpoch: number });
  for (const patience of [1, 2, 3, 4]) {
    let kept = 0;
    let epochs = 0;
    for (const head of heads) {
      // The fit loop's rule: stop before epoch e once e − best > patience.
      let best = Infinity;
      let bestEpoch = 0;
      let trained = 0;
      for (const [i, entry] of head.history.entries()) {
        const epoch = i + 1;
        if (bestEpoch > 0 && epoch - bestEpoch > patience) break;
        trained = epoch;
        if (entry.valLoss < best) [best, bestEpoch] = [entry.valLoss, epoch];
      }
      // A history shorter than the replay needs ended at the run's own stop (its patience or max epochs).
      kept += bestEpoch === head.bestEpoch ? 1 : 0;
      epochs += trained;
    }
    console.log(JSON.stringify({ model: key, heads: heads.length, patience, sameBestEpoch: kept, epochsTrained: epochs }));
  }
}
