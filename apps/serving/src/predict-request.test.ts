import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defaultConfig } from './config.js';
import { formError, hasVisibleCharacter, normalizeOverview, predictFormSchema } from './predict-request.js';

describe('overview text', () => {
  it('has no visible character when made only of whitespace, control, format or blank-rendering characters', () => {
    const invisible = [
      '', ' \n\t ', '\u200B\u200B\u200B', '\uFEFF', '\u200B \u200C\u200D\u2060\uFEFF', '\u00AD\u202E\u2066', '\u0000\u0007\u007F\u0085',
      '\u3000\u00A0\u2028', '\u3164\u115F\u2800', '\u0301\u0308',
    ];
    for (const text of invisible) expect(hasVisibleCharacter(normalizeOverview(text)), JSON.stringify(text)).toBe(false);
    for (const text of ['a', '\u200BA\u200B', '7', '?', '€', '日本', 'é']) expect(hasVisibleCharacter(normalizeOverview(text)), JSON.stringify(text)).toBe(true);
  });

  it('drops format and non-whitespace control characters, keeps words and line breaks, trims', () => {
    expect(normalizeOverview('\uFEFF A spy\u200B story.\nPart\u00AD two \u0007')).toBe('A spy story.\nPart two');
  });
});

describe('the predict form schema', () => {
  const schema = predictFormSchema(defaultConfig({ maxOverviewChars: 5 }));
  const codeOf = (input: unknown) => {
    const result = schema.safeParse(input);
    return result.success ? 'ok' : formError(result.error.issues).code;
  };

  it('carries the code of the registry for each failure', () => {
    expect(codeOf({})).toBe('NO_INPUT');
    expect(codeOf({ overview: '\u200B\u200B' })).toBe('EMPTY_OVERVIEW');
    expect(codeOf({ overview: 'abcdef' })).toBe('OVERVIEW_TOO_LONG');
    expect(codeOf({ overview: 'ab\u200Bcde' })).toBe('ok'); // 5 characters once the zero-width space is gone
    expect(codeOf({ overview: ['a', 'b'] })).toBe('UNKNOWN_FIELD');
    expect(codeOf({ poster: Buffer.alloc(0) })).toBe('POSTER_NOT_AN_IMAGE');
    expect(codeOf({ poster: 'text' })).toBe('UNKNOWN_FIELD');
    expect(codeOf({ overview: 'a', title: 'x' })).toBe('UNKNOWN_FIELD');
    expect(codeOf({ title: 'x' })).toBe('UNKNOWN_FIELD'); // the unknown field explains the missing input best
  });

  it('gives the OpenAPI document the same limits it enforces', () => {
    const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as { properties: Record<string, Record<string, unknown>>; additionalProperties: boolean };
    expect(json.properties['overview']).toMatchObject({ type: 'string', minLength: 1, maxLength: 5 });
    expect(json.properties['poster']).toMatchObject({ type: 'string', format: 'binary' });
    expect(json.additionalProperties).toBe(false);
  });
});
