import { z } from 'zod';

/** A command-line option as yargs takes it, derived from a zod field. */
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
      } else break;
    }
    const type = inner instanceof z.ZodNumber ? 'number' : inner instanceof z.ZodBoolean ? 'boolean' : 'string';
    const env = options.env?.[field];
    const describe = [(raw as z.ZodType).description, env ? `(env ${env})` : undefined].filter(Boolean).join(' ');
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
