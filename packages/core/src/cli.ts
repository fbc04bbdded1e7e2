import { z } from 'zod';
import { parseArgs } from 'node:util';
import { DATASET_ENV } from './dataset.js';

/** A command-line option derived from a zod field (readFlags reads it; yargs takes the same shape). */
export interface CliOption {
  type: 'number' | 'string' | 'boolean';
  describe?: string;
  default?: unknown;
  choices?: readonly string[];
}

export function kebabCase(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

export function camelCase(name: string): string {
  return name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/**
 * The command-line options of a zod object schema, so that flags, their types, choices, defaults and
 * help text all come from the schema that validates them: `learningRate` → `--learning-rate`
 * (`--<prefix>-learning-rate` with a prefix). `env` names the environment variable read for a field.
 */
export function cliOptionsOf(schema: z.ZodObject, options: { prefix?: string; env?: Readonly<Record<string, string>>; omit?: readonly string[] } = {}): Record<string, CliOption> {
  const out: Record<string, CliOption> = {};
  for (const [field, raw] of Object.entries(schema.shape)) {
    if (options.omit?.includes(field)) continue;
    let inner = raw as z.ZodType;
    let fallback: unknown;
    for (;;) {
      if (inner instanceof z.ZodDefault) {
        fallback = inner.def.defaultValue;
        inner = inner.unwrap() as z.ZodType;
      } else if (inner instanceof z.ZodOptional) {
        inner = inner.unwrap() as z.ZodType;
      } else if (inner instanceof z.ZodPipe) {
        // A field parsed then transformed (`--model cnn,sentence` → a list): its flag is the input.
        inner = inner.in as z.ZodType;
      } else break;
    }
    const type = inner instanceof z.ZodNumber ? 'number' : inner instanceof z.ZodBoolean ? 'boolean' : 'string';
    const env = options.env?.[field];
    const describe = [(raw as z.ZodType).description ?? (raw instanceof z.ZodPipe ? (raw.in as z.ZodType).description : undefined), env ? `(env ${env})` : undefined].filter(Boolean).join(' ');
    const name = options.prefix ? `${options.prefix}-${kebabCase(field)}` : kebabCase(field);
    out[name] = {
      type,
      ...(describe ? { describe } : {}),
      ...(fallback !== undefined ? { default: fallback } : {}),
      ...(inner instanceof z.ZodEnum ? { choices: inner.options as string[] } : {}),
    };
  }
  return out;
}

/** Parses options at the boundary; a bad value names its flag (`--learning-rate: …`). */
export function parseCliOptions<S extends z.ZodType>(schema: S, raw: unknown, prefix?: string): z.output<S> {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `--${prefix ? `${prefix}-` : ''}${i.path.map(String).map(kebabCase).join('.')}: ${i.message}`);
    throw new Error(`invalid options:\n  ${lines.join('\n  ')}`);
  }
  return parsed.data;
}

/** A titled group of derived options, for help text (the trainer lists each recipe's apart). */
export interface CliSection {
  title?: string;
  options: Record<string, CliOption>;
}

function helpText(usage: string, sections: readonly CliSection[]): string {
  const lines = [usage];
  for (const section of sections) {
    lines.push('', ...(section.title ? [section.title] : []));
    for (const [name, o] of Object.entries(section.options)) {
      const extra = [o.choices ? `one of ${o.choices.join(', ')}` : o.type, o.default !== undefined ? `default ${JSON.stringify(o.default)}` : undefined].filter(Boolean).join('; ');
      lines.push(`  --${name.padEnd(26)} ${o.describe ?? ''} [${extra}]`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Reads command-line flags against derived options: `--help` prints them and exits; an unknown flag,
 * a missing value or a number that is not one is refused by name (exit code 2). Returns the flags
 * given, by name (kebab-case); defaults are the schema's to apply. A flag given twice takes its last value.
 * With `positionals`, arguments that are not flags (a list of files) are returned as `_`; else refused.
 */
export function readFlags(args: readonly string[], sections: readonly CliSection[], usage: string, options: { positionals?: boolean } = {}): Record<string, unknown> {
  const flags = Object.assign({}, ...sections.map((s) => s.options)) as Record<string, CliOption>;
  const refuse = (message: string): never => {
    process.stderr.write(`${usage.split('\n')[0]}\n${message} (--help lists the options)\n`);
    process.exit(2);
  };
  let values: Record<string, string | boolean | undefined> = {};
  let positionals: string[] = [];
  try {
    ({ values, positionals } = parseArgs({
      args: [...args],
      options: { help: { type: 'boolean' }, ...Object.fromEntries(Object.entries(flags).map(([name, o]) => [name, { type: o.type === 'boolean' ? 'boolean' : 'string' } as const])) },
      strict: true,
      allowPositionals: options.positionals ?? false,
    }) as { values: typeof values; positionals: string[] });
  } catch (error) {
    refuse((error as Error).message);
  }
  if (values['help']) {
    process.stdout.write(helpText(usage, sections));
    process.exit(0);
  }
  const out: Record<string, unknown> = options.positionals ? { _: positionals } : {};
  for (const [name, value] of Object.entries(values)) {
    if (flags[name]?.type !== 'number') out[name] = value;
    else if (value !== '' && Number.isFinite(Number(value))) out[name] = Number(value);
    else refuse(`--${name}: expected a number, got '${String(value)}'`);
  }
  return out;
}

/** A command's options from one schema: flags read by readFlags, then checked and defaulted by parseCliOptions (a bad value exits with 2). */
export function parseCommandLine<S extends z.ZodObject>(schema: S, usage: string, args: readonly string[] = process.argv.slice(2)): z.output<S> {
  const flags = readFlags(args, [{ options: cliOptionsOf(schema) }], usage);
  try {
    return parseCliOptions(schema, Object.fromEntries(Object.entries(flags).map(([name, value]) => [camelCase(name), value])));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exit(2);
  }
}

/** Options several commands take, declared once: the dataset, a quick slice of it, the caches. */
export const DatasetOptionsSchema = z.object({
  data: z.string().optional().describe(`dataset directory (CSV + Images/); default: $${DATASET_ENV}, then data/multimodal-imdb, then ../shared/datasets/multimodal-imdb`),
  limit: z.int().positive().optional().describe('use only the first N films (a quick run)'),
  cacheDir: z.string().optional().describe('decode / feature cache directory (default .cache/ in the workspace)'),
});

/** The fold options of every command that splits the films (core's foldOf), declared once. */
export const FoldOptionsSchema = z.object({
  seed: z.int().nonnegative().default(0).describe('seed of the folds (films are hashed with it) and of everything random in the run'),
  folds: z.int().min(2).max(20).default(5).describe('films are hashed into this many folds; fold 0 is the validation split of models trained once (5: 20 %)'),
});
