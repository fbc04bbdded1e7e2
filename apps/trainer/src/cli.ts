import { camelCase, cliOptionsOf, CommandLineError, exitForCommandLineError, exitOnCommandLineError, parseCliOptions, readFlags, type CliSection } from '@filmgenre/core';
import type { z } from 'zod';
import { CommonFlagsSchema, EvaluateConfigSchema, MergeConfigSchema, PredictConfigSchema, resolveShard, TrainRunSchema, TuneConfigSchema } from './config.js';
import { RECIPES } from './recipes.js';

type Flags = Record<string, unknown>;

/** The flags that name a field of `schema`, by field. */
function fieldsOf(schema: z.ZodObject, flags: Flags): Flags {
  return Object.fromEntries(Object.entries(flags).map(([name, value]) => [camelCase(name), value]).filter(([field]) => (field as string) in schema.shape));
}

/** A command's config: the flags that name its schema's fields, validated by it. */
function configOf<S extends z.ZodObject>(schema: S, flags: Flags): z.infer<S> {
  return parseCliOptions(schema, fieldsOf(schema, flags));
}

/**
 * Splits the flags into the run's options, the options common to every recipe and each recipe's
 * own (`--cnn-variant` → recipe cnn, field variant), and validates each against its schema.
 */
function trainOptions(flags: Flags) {
  const run = configOf(TrainRunSchema, flags);
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

/**
 * A command: `run` loads what it needs, calls `started` once its work begins (from then on it stops
 * itself on `signal`), then works. `files`: it takes a list of files after its flags (as `_`).
 */
type Command = { summary: string; sections: () => CliSection[]; files?: boolean; run: (flags: Flags, signal: AbortSignal, started: () => void) => Promise<void> };

const COMMANDS: Record<string, Command> = {
  train: {
    summary: 'Train the poster, overview and fusion models, tune thresholds on validation, save self-describing model directories and a report',
    sections: () => [
      { title: 'Run:', options: cliOptionsOf(TrainRunSchema) },
      { title: 'Every model:', options: cliOptionsOf(CommonFlagsSchema) },
      ...RECIPES.map((recipe) => ({
        title: `${recipe.key} (${recipe.summary}):`, options: cliOptionsOf(recipe.options, { prefix: recipe.key, omit: Object.keys(CommonFlagsSchema.shape) }),
      })),
    ],
    run: async (flags, signal, started) => {
      const options = trainOptions(flags);
      const { train } = await import('./train.js');
      started();
      await train(options.run, options.recipeOptions, signal);
    },
  },
  evaluate: {
    summary: 'Score saved models on any dataset directory in the same layout, with their stored thresholds',
    sections: () => [{ options: cliOptionsOf(EvaluateConfigSchema) }],
    run: async (flags, signal, started) => {
      const config = configOf(EvaluateConfigSchema, flags);
      const { evaluate } = await import('./evaluate.js');
      started();
      await evaluate(config, signal);
    },
  },
  predict: {
    summary: 'Score a catalogue (or one shard of it) with every model of a models directory: one JSON line per film; resumes after a stop',
    sections: () => [{ options: cliOptionsOf(PredictConfigSchema) }],
    run: async (flags, signal, started) => {
      const config = configOf(PredictConfigSchema, flags);
      const shard = resolveShard(config.shard);
      const { predictCatalogue } = await import('./catalogue.js');
      started();
      await predictCatalogue(config, shard, signal);
    },
  },
  merge: {
    summary: 'Join the outputs of every shard of a predict run into the file one process would have written: merge --output FILE.jsonl PART.jsonl…',
    sections: () => [{ options: cliOptionsOf(MergeConfigSchema) }],
    files: true,
    run: async (flags) => {
      const config = configOf(MergeConfigSchema, flags);
      const { mergeParts } = await import('./catalogue.js');
      mergeParts(config, flags['_'] as string[]);
    },
  },
  tune: {
    summary: 'Hyperparameter search within a time budget; writes a leaderboard and the best configuration',
    sections: () => [{ options: cliOptionsOf(TuneConfigSchema) }],
    run: async (flags, signal, started) => {
      const config = configOf(TuneConfigSchema, flags);
      const { tune } = await import('./tune.js');
      started();
      await tune(config, signal);
    },
  },
};

// Under `npx nx`, Nx stops reading our output when it exits (after a Ctrl-C it even stops printing
// it), while a stop in progress still logs and saves: a vanished reader must not kill that stop.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
  });
}

/**
 * Parses the command line and runs the command. `signal` is the run's stop request (main.ts installs
 * it before anything slow loads); `started` is called once a command begins its work, which from
 * then on stops itself on `signal` (after the current batch) instead of the process exiting at once.
 */
async function run(signal: AbortSignal, started: () => void): Promise<void> {
  const [name, ...args] = process.argv.slice(2);
  const command = name === undefined ? undefined : COMMANDS[name];
  if (!command) {
    const list = Object.entries(COMMANDS).map(([key, c]) => `  ${key.padEnd(10)} ${c.summary}`).join('\n');
    console.error(`usage: trainer <command> [options] (--help after a command lists its options)\n\n${list}\n\n${name === undefined || name === '--help' ? 'name a command' : `unknown command '${name}'`}`);
    process.exit(name === '--help' ? 0 : 2);
  }
  const usage = `trainer ${name} [options]${command.files ? ' FILE…' : ''}\n\n${command.summary}`;
  const flags = exitOnCommandLineError(usage, () => readFlags(args, command.sections(), usage, { positionals: command.files ?? false }));
  try {
    await command.run(flags, signal, started);
  } catch (error) {
    // A value its schema refuses (found once the command reads its config): a refused command line,
    // exit code 2 like an unknown flag, not a failed run.
    if (error instanceof CommandLineError) exitForCommandLineError(usage, error);
    throw error;
  }
}

export function runCli(signal: AbortSignal, started: () => void): void {
  // Exit explicitly: the threaded wasm backend's worker threads would otherwise keep the process alive.
  run(signal, started).then(
    () => process.exit(process.exitCode ?? 0),
    (error: Error) => {
      console.error(`error: ${error.message}`);
      if (process.env['DEBUG']) console.error(error.stack);
      process.exit(1);
    },
  );
}
