import { z } from 'zod';
import { parseArgs } from 'node:util';
import { DATASET_ENV } from './dataset.js';

/** A command-line option derived from a zod field (readFlags reads it). */
export interface CliOption {
  /** The schema field it sets. */
  field: string;
  /** The value's type; of each item for a list. */
  type: 'number' | 'string' | 'boolean';
  /** A z.array field: given repeated or comma-separated. */
  list?: true;
  describe?: string;
  default?: unknown;
  /** How the default reads in help when it is computed at start-up (`.meta({ defaultText })`). */
  defaultText?: string;
  choices?: readonly string[];
  /** The environment variable read when the flag is not given. */
  env?: string;
}

/** What a field may say of its flag besides `.describe()`, given as `.meta({ description, flag, defaultText })`. */
interface CliMeta {
  /** The flag, when it is not the field in kebab-case (`cors-origin` for `corsOrigins`). */
  flag?: string;
  defaultText?: string;
}

export function kebabCase(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

export function camelCase(name: string): string {
  return name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

const flagOf = (field: string, schema: z.ZodType | undefined): string => (schema?.meta() as CliMeta | undefined)?.flag ?? kebabCase(field);

/**
 * The command-line options of a zod object schema, so that flags, their types, choices, defaults and
 * help text all come from the schema that validates them: `learningRate` → `--learning-rate`
 * (`--<prefix>-learning-rate` with a prefix). With `envPrefix`, each is also read from
 * `<ENVPREFIX>_<FLAG>` (`SERVING_MAX_BATCH`) when not given.
 */
export function cliOptionsOf(schema: z.ZodObject, options: { prefix?: string; envPrefix?: string; omit?: readonly string[] } = {}): Record<string, CliOption> {
  const out: Record<string, CliOption> = {};
  for (const [field, raw] of Object.entries(schema.shape) as [string, z.ZodType][]) {
    if (options.omit?.includes(field)) continue;
    let inner = raw;
    let fallback: unknown;
    let list = false;
    for (;;) {
      if (inner instanceof z.ZodDefault) {
        fallback = inner.def.defaultValue;
        inner = inner.unwrap() as z.ZodType;
      } else if (inner instanceof z.ZodOptional) {
        inner = inner.unwrap() as z.ZodType;
      } else if (inner instanceof z.ZodPipe) {
        // A field parsed then transformed (`--model cnn,sentence` → a list): its flag is the input.
        inner = inner.in as z.ZodType;
      } else if (inner instanceof z.ZodArray) {
        list = true;
        inner = inner.element as z.ZodType;
      } else break;
    }
    const flag = flagOf(field, raw);
    const name = options.prefix ? `${options.prefix}-${flag}` : flag;
    const env = options.envPrefix ? `${options.envPrefix}_${name.toUpperCase().replace(/-/g, '_')}` : undefined;
    const describe = [raw.description ?? (raw instanceof z.ZodPipe ? (raw.in as z.ZodType).description : undefined), env ? `(env ${env})` : undefined].filter(Boolean).join(' ');
    const { defaultText } = (raw.meta() ?? {}) as CliMeta;
    out[name] = {
      field,
      type: inner instanceof z.ZodNumber ? 'number' : inner instanceof z.ZodBoolean ? 'boolean' : 'string',
      ...(list ? { list: true } : {}),
      ...(describe ? { describe } : {}),
      ...(fallback !== undefined ? { default: fallback } : {}),
      ...(defaultText ? { defaultText } : {}),
      ...(inner instanceof z.ZodEnum ? { choices: inner.options as string[] } : {}),
      ...(env ? { env } : {}),
    };
  }
  return out;
}

/** A command line refused (exitCode 2; the message names the flag), or --help asked for (exitCode 0; the message is the help). */
export class CommandLineError extends Error {
  override name = 'CommandLineError';
  constructor(message: string, readonly exitCode: 0 | 2 = 2) {
    super(message);
  }
}

/** Parses options at the boundary; a bad value names its flag (`--learning-rate: …`). */
export function parseCliOptions<S extends z.ZodType>(schema: S, raw: unknown, prefix?: string): z.output<S> {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const shape: Record<string, z.ZodType> = schema instanceof z.ZodObject ? schema.shape : {};
    const lines = parsed.error.issues.map(({ path: [field, ...rest], message }) =>
      `--${prefix ? `${prefix}-` : ''}${[flagOf(String(field), shape[String(field)]), ...rest].join('.')}: ${message}`);
    throw new CommandLineError(lines.join('; '));
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
      const fallback = o.defaultText ?? (o.default !== undefined ? JSON.stringify(o.default) : undefined);
      const extra = [o.choices ? `one of ${o.choices.join(', ')}` : o.type, o.list ? 'repeat or comma-separate' : undefined, fallback !== undefined ? `default ${fallback}` : undefined].filter(Boolean).join('; ');
      lines.push(`  --${name.padEnd(26)} ${o.describe ?? ''} [${extra}]`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Reads command-line flags against derived options, then for those not given their environment
 * variables (from `env`). Throws a CommandLineError for --help, an unknown flag, a missing value or a
 * number that is not one. Returns the flags given, by name (kebab-case); defaults are the schema's
 * to apply. A flag given twice takes its last value, a list flag every value. With `positionals`,
 * arguments that are not flags (a list of files) are returned as `_`; else refused.
 */
export function readFlags(args: readonly string[], sections: readonly CliSection[], usage: string, options: { positionals?: boolean; env?: NodeJS.ProcessEnv } = {}): Record<string, unknown> {
  const flags = Object.assign({}, ...sections.map((s) => s.options)) as Record<string, CliOption>;
  let values: Record<string, string | boolean | string[] | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: [...args],
      options: { help: { type: 'boolean' }, ...Object.fromEntries(Object.entries(flags).map(([name, o]) => [name, { type: o.type === 'boolean' ? 'boolean' : 'string', multiple: o.list ?? false } as const])) },
      strict: true,
      allowPositionals: options.positionals ?? false,
    }));
  } catch (error) {
    throw new CommandLineError((error as Error).message);
  }
  if (values['help']) throw new CommandLineError(helpText(usage, sections), 0);
  const out: Record<string, unknown> = options.positionals ? { _: positionals } : {};
  for (const [name, o] of Object.entries(flags)) {
    const variable = o.env ? options.env?.[o.env] : undefined;
    const value = values[name] ?? (variable ? (o.type === 'boolean' ? !/^(0|false)$/i.test(variable) : variable) : undefined);
    if (value === undefined) continue;
    const typed = (item: string): unknown => {
      if (o.type !== 'number') return item;
      if (item !== '' && Number.isFinite(Number(item))) return Number(item);
      throw new CommandLineError(`--${name}: expected a number, got '${item}'`);
    };
    out[name] = o.list ? [value].flat().flatMap((v) => String(v).split(',')).map((v) => v.trim()).filter(Boolean).map(typed) : typeof value === 'string' ? typed(value) : value;
  }
  return out;
}

/** Ends the process for a CommandLineError: the help on stdout with exit code 0, a refusal on stderr with 2. */
export function exitForCommandLineError(usage: string, error: CommandLineError): never {
  if (error.exitCode === 0) process.stdout.write(error.message);
  else process.stderr.write(`${usage.split('\n')[0]}\ninvalid options: ${error.message} (--help lists the options)\n`);
  process.exit(error.exitCode);
}

/** Runs `read` for a process: a CommandLineError ends it (exitForCommandLineError). */
export function exitOnCommandLineError<T>(usage: string, read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (!(error instanceof CommandLineError)) throw error;
    exitForCommandLineError(usage, error);
  }
}

/**
 * A command's options from one schema: flags (then `<envPrefix>_<FLAG>` variables from `env`) read
 * by readFlags, checked and defaulted by parseCliOptions. Throws a CommandLineError.
 */
export function readCommandLine<S extends z.ZodObject>(schema: S, usage: string, args: readonly string[], options: { envPrefix?: string; env?: NodeJS.ProcessEnv } = {}): z.output<S> {
  const cli = cliOptionsOf(schema, { envPrefix: options.envPrefix });
  const flags = readFlags(args, [{ options: cli }], usage, { env: options.env });
  return parseCliOptions(schema, Object.fromEntries(Object.entries(flags).map(([name, value]) => [cli[name]!.field, value])));
}

/** readCommandLine for a process's own command line: --help exits 0, a refused flag or value exits 2. */
export function parseCommandLine<S extends z.ZodObject>(schema: S, usage: string, args: readonly string[] = process.argv.slice(2)): z.output<S> {
  return exitOnCommandLineError(usage, () => readCommandLine(schema, usage, args));
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
