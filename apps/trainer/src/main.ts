#!/usr/bin/env node
import { camelCase, cliOptionsOf, parseCliOptions } from '@filmgenre/core';
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { CommonFlagsSchema, EvaluateConfigSchema, TRAINER_ENV, TrainRunSchema, TuneConfigSchema } from './config.js';
import { RECIPES } from './recipes.js';

type Raw = Record<string, unknown>;

/** Adds options derived from a schema to a yargs command (flags, types, choices, defaults and help from one place). */
function withOptions(y: Argv, schema: Parameters<typeof cliOptionsOf>[0], options: Parameters<typeof cliOptionsOf>[1] = {}, group?: string): Argv {
  const derived = cliOptionsOf(schema, options);
  for (const [name, option] of Object.entries(derived)) {
    y.option(name, option);
    if (group) y.group(name, group);
  }
  return y;
}

/** yargs gives both kebab and camel keys; keep the camel ones, drop yargs' own and unset values. */
function camelKeys(argv: Raw): Raw {
  return Object.fromEntries(Object.entries(argv).filter(([k, v]) => !k.includes('-') && k !== '_' && k !== '$0' && v !== undefined));
}

/** Environment variables fill options not given as flags. */
function withEnv(raw: Raw): Raw {
  const out = { ...raw };
  for (const [field, name] of Object.entries(TRAINER_ENV)) if (out[field] === undefined && process.env[name]) out[field] = process.env[name];
  return out;
}

/**
 * Splits the flat argv into the run's options, the options common to every recipe and each recipe's
 * own (`--cnn-variant` → recipe cnn, field variant), and validates each against its schema.
 */
function trainOptions(argv: Raw) {
  const flat = camelKeys(argv);
  const run = parseCliOptions(TrainRunSchema, withEnv(Object.fromEntries(Object.keys(TrainRunSchema.shape).filter((k) => k in flat).map((k) => [k, flat[k]]))));
  const common = Object.fromEntries(Object.keys(CommonFlagsSchema.shape).filter((k) => k in flat).map((k) => [k, flat[k]]));
  const recipeOptions: Record<string, object> = {};
  for (const recipe of RECIPES) {
    const own = Object.fromEntries(Object.entries(argv)
      .filter(([k, v]) => k.startsWith(`${recipe.key}-`) && v !== undefined)
      .map(([k, v]) => [camelCase(k.slice(recipe.key.length + 1)), v]));
    recipeOptions[recipe.key] = parseCliOptions(recipe.options, { ...common, ...own }, recipe.key) as object;
  }
  return { run, recipeOptions };
}

// Under `npx nx`, Nx stops reading our output when it exits (after a Ctrl-C it even stops printing
// it), while a stop in progress still logs and saves: a vanished reader must not kill that stop.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
  });
}

async function run(): Promise<void> {
  await yargs(hideBin(process.argv))
    // A flag given twice takes its last value, as in most CLIs (yargs would make an array of it).
    .parserConfiguration({ 'duplicate-arguments-array': false })
    .scriptName('trainer')
    .usage('$0 <command> [options]')
    .command(
      'train',
      'Train the poster, overview and fusion models, tune thresholds on validation, save self-describing model directories and a report',
      (y) => {
        withOptions(y, TrainRunSchema, { env: TRAINER_ENV }, 'Run:');
        withOptions(y, CommonFlagsSchema, {}, 'Every model:');
        for (const recipe of RECIPES) {
          withOptions(y, recipe.options, { prefix: recipe.key, omit: Object.keys(CommonFlagsSchema.shape) }, `${recipe.key} (${recipe.summary}):`);
        }
        return y.strict();
      },
      async (argv) => {
        const options = trainOptions(argv as Raw);
        const { train } = await import('./train.js');
        await train(options.run, options.recipeOptions);
      },
    )
    .command(
      'evaluate',
      'Score saved models on any dataset directory in the same layout, with their stored thresholds',
      (y) => withOptions(y, EvaluateConfigSchema, { env: TRAINER_ENV }).strict(),
      async (argv) => {
        const { evaluate } = await import('./evaluate.js');
        await evaluate(parseCliOptions(EvaluateConfigSchema, withEnv(camelKeys(argv as Raw))));
      },
    )
    .command(
      'tune',
      'Hyperparameter search within a time budget; writes a leaderboard and the best configuration',
      (y) => withOptions(y, TuneConfigSchema, { env: TRAINER_ENV }).strict(),
      async (argv) => {
        const { tune } = await import('./tune.js');
        await tune(parseCliOptions(TuneConfigSchema, withEnv(camelKeys(argv as Raw))));
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

// Exit explicitly: the threaded wasm backend's worker threads would otherwise keep the process alive.
run().then(
  () => process.exit(process.exitCode ?? 0),
  (error: Error) => {
    console.error(`error: ${error.message}`);
    if (process.env['DEBUG']) console.error(error.stack);
    process.exit(1);
  },
);
