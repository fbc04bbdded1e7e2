#!/usr/bin/env node
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { EvaluateConfigSchema, FUSION_WEIGHTINGS, MODEL_CHOICES, parseConfig, TrainConfigSchema } from './config.js';

const backendOption = {
  type: 'string',
  choices: ['auto', 'tensorflow', 'wasm', 'cpu'],
  describe: 'TensorFlow.js backend (default: tensorflow if tfjs-node loads, else wasm, else cpu; env FILMGENRE_BACKEND)',
} as const;

async function run(): Promise<void> {
  await yargs(hideBin(process.argv))
    .scriptName('trainer')
    .usage('$0 <command> [options]')
    .command(
      'train',
      'Train the poster, overview and fusion models, tune thresholds on validation, save artifacts and a report',
      (y) =>
        y
          .option('model', { choices: MODEL_CHOICES, default: 'all', describe: 'which model(s) to train' })
          .option('data', { type: 'string', describe: 'dataset directory (CSV + Images/); default: $FILMGENRE_DATA, data/multimodal-imdb, ../shared/datasets/multimodal-imdb' })
          .option('out', { type: 'string', default: 'models', describe: 'where model directories are written (cnn/, lstm/, fusion/)' })
          .option('report-dir', { type: 'string', describe: 'where the run report goes (default reports/<timestamp>)' })
          .option('epochs', { type: 'number', describe: 'maximum epochs (default per model)' })
          .option('batch-size', { type: 'number', describe: 'batch size (default per model)' })
          .option('learning-rate', { type: 'number', describe: 'Adam learning rate (default per model)' })
          .option('limit', { type: 'number', describe: 'use only the first N films (quick run)' })
          .option('seed', { type: 'number', default: 0, describe: 'seed for the split, shuffling, augmentation, initialisation and dropout (a run repeats for a seed on the same backend)' })
          .option('backend', backendOption)
          .option('resume', { type: 'boolean', default: false, describe: 'continue from the last checkpoint of an interrupted run' })
          .option('patience', { type: 'number', default: 3, describe: 'early stopping: epochs without validation-loss improvement' })
          .option('validation-fraction', { type: 'number', default: 0.2 })
          .option('cnn-variant', { choices: ['study', 'residual', 'pretrained'] as const, describe: 'poster model variant' })
          .option('text-variant', { choices: ['bilstm', 'transformer'] as const, describe: 'overview model variant' })
          .option('text-embeddings', { choices: ['learned', 'wink-100d'] as const, describe: 'embedding initialisation' })
          .option('fusion-kind', { choices: ['late', 'joint'] as const, default: 'late' })
          .option('fusion-weighting', {
            choices: FUSION_WEIGHTINGS, default: 'auto',
            describe: 'late fusion image weights: one 0.5 for all genres, one fitted for all, one per genre, or auto (the best of the three by 2-fold cross-validation inside the validation split)',
          })
          .option('dropout', { type: 'number' })
          .option('class-weight-strength', { type: 'number', default: 0.5, describe: 'positive-class weight = (neg/pos)^strength; 0 disables' })
          .option('augment-strength', { type: 'number', default: 1, describe: 'poster augmentation strength; 0 disables' })
          .option('thresholds', { choices: ['micro', 'per-genre'] as const, default: 'micro', describe: 'tune per-genre thresholds on validation for pooled micro-F1, or for each genre\'s own F1' })
          .option('cache-dir', { type: 'string', describe: 'decode/feature cache directory (default .cache/ in the workspace)' })
          .strict(),
      async (argv) => {
        const { train } = await import('./train.js');
        await train(parseConfig(TrainConfigSchema, camel(argv)));
      },
    )
    .command(
      'evaluate',
      'Evaluate saved models on any dataset directory in the same layout, with their stored thresholds',
      (y) =>
        y
          .option('models', { type: 'string', default: 'models', describe: 'directory holding cnn/, lstm/, fusion/' })
          .option('data', { type: 'string', describe: 'dataset directory (CSV + Images/)' })
          .option('output', { type: 'string', describe: 'write the JSON result here (default: stdout)' })
          .option('limit', { type: 'number' })
          .option('backend', backendOption)
          .option('cache-dir', { type: 'string' })
          .strict(),
      async (argv) => {
        const { evaluate } = await import('./evaluate.js');
        await evaluate(parseConfig(EvaluateConfigSchema, camel(argv)));
      },
    )
    .command(
      'tune',
      'Hyperparameter search within a time budget; writes a leaderboard and the best configuration',
      (y) =>
        y
          .option('model', { choices: ['cnn', 'lstm'] as const, default: 'lstm' })
          .option('budget-minutes', { type: 'number', default: 20 })
          .option('trials', { type: 'number', default: 12 })
          .option('epochs', { type: 'number' })
          .option('limit', { type: 'number' })
          .option('data', { type: 'string' })
          .option('out', { type: 'string', default: 'reports/tune' })
          .option('seed', { type: 'number', default: 0 })
          .option('backend', backendOption)
          .strict(),
      async (argv) => {
        const { tune } = await import('./tune.js');
        await tune(camel(argv) as never);
      },
    )
    .demandCommand(1, 'name a command: train, evaluate or tune')
    .strict()
    .help()
    .fail((message, error, y) => {
      if (error) throw error;
      console.error(`${y.help()}\n\n${message}`);
      process.exit(2);
    })
    .parseAsync();
}

/** yargs gives both kebab and camel keys; keep the camel ones the schemas know, drop yargs' own. */
function camel(argv: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(argv).filter(([k, v]) => !k.includes('-') && k !== '_' && k !== '$0' && v !== undefined));
}

// Exit explicitly: the threaded wasm backend's worker threads would otherwise keep the process alive.
run().then(
  () => process.exit(process.exitCode ?? 0),
  (error: Error) => {
    console.error(`error: ${error.message}`);
    if (process.env['DEBUG']) console.error(error.stack);
    process.exit(1);
  },
);
