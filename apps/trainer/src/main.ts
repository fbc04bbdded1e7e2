#!/usr/bin/env node
import { camelCase, cliOptionsOf, parseCliOptions, readFlags, type CliSection } from '@filmgenre/core';
import type { z } from 'zod';
import { CommonFlagsSchema, EvaluateConfigSchema, TrainRunSchema, TuneConfigSchema } from './config.js';
import { RECIPES } from './recipes.js';

type Flags = Record<string, unknown>;

/** The flags that name a field of `schema`, by field. */
function fieldsOf(schema: z.ZodObject, flags: Flags): Flags {
  return Object.fromEntries(Object.entries(flags).map(([name, value]) => [camelCase(name), value]).filter(([field]) => (field as string) in schema.shape));
}

/**
 * Splits the flags into the run's options, the options common to every recipe and each recipe's
 * own (`--cnn-variant` → recipe cnn, field variant), and validates each against its schema.
 */
function trainOptions(flags: Flags) {
  const run = parseCliOptions(TrainRunSchema, fieldsOf(TrainRunSchema, flags));
  const common = fieldsOf(CommonFlagsSchema, flags);
  const recipeOptions: Record<string, object> = {};
  for (const recipe of RECIPES) {
    const own = Object.fromEntries(Object.entries(flags)
      .filter(([name]) => name.startsWith(`${recipe.key}-`))
      .map(([name, value]) => [camelCase(name.slice(recipe.key.length + 1)), value]));
    recipeOptions[recipe.key] = parseCliOptions(recipe.options, { ...common, ...own }, recipe.key) as object;
  }
  return { run, recipeOptions };
}

const COMMANDS: Record<string, { summary: string; sections: () => CliSection[]; run: (flags: Flags) => Promise<void> }> = {
  train: {
    summary: 'Train the poster, overview and fusion models, tune thresholds on validation, save self-describing model directories and a report',
    sections: () => [
      { title: 'Run:', options: cliOptionsOf(TrainRunSchema) },
      { title: 'Every model:', options: cliOptionsOf(CommonFlagsSchema) },
      ...RECIPES.map((recipe) => ({
        title: `${recipe.key} (${recipe.summary}):`, options: cliOptionsOf(recipe.options, { prefix: recipe.key, omit: Object.keys(CommonFlagsSchema.shape) }),
      })),
    ],
    run: async (flags) => {
      const options = trainOptions(flags);
      await (await import('./train.js')).train(options.run, options.recipeOptions);
    },
  },
  evaluate: {
    summary: 'Score saved models on any dataset directory in the same layout, with their stored thresholds',
    sections: () => [{ options: cliOptionsOf(EvaluateConfigSchema) }],
    run: async (flags) => (await import('./evaluate.js')).evaluate(parseCliOptions(EvaluateConfigSchema, fieldsOf(EvaluateConfigSchema, flags))),
  },
  tune: {
    summary: 'Hyperparameter search within a time budget; writes a leaderboard and the best configuration',
    sections: () => [{ options: cliOptionsOf(TuneConfigSchema) }],
    run: async (flags) => (await import('./tune.js')).tune(parseCliOptions(TuneConfigSchema, fieldsOf(TuneConfigSchema, flags))),
  },
};

// Under `npx nx`, Nx stops reading our output when it exits (after a Ctrl-C it even stops printing
// it), while a stop in progress still logs and saves: a vanished reader must not kill that stop.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
  });
}

async function run(): Promise<void> {
  const [name, ...args] = process.argv.slice(2);
  const command = name === undefined ? undefined : COMMANDS[name];
  if (!command) {
    const list = Object.entries(COMMANDS).map(([key, c]) => `  ${key.padEnd(10)} ${c.summary}`).join('\n');
    console.error(`usage: trainer <command> [options] (--help after a command lists its options)\n\n${list}\n\n${name === undefined || name === '--help' ? 'name a command' : `unknown command '${name}'`}`);
    process.exit(name === '--help' ? 0 : 2);
  }
  await command.run(readFlags(args, command.sections(), `trainer ${name} [options]\n\n${command.summary}`));
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
