import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { cliOptionsOf, parseCliOptions } from './cli.js';

const Schema = z.object({
  learningRate: z.number().positive().optional().describe('Adam learning rate'),
  variant: z.enum(['a', 'b']).default('a').describe('which model'),
  resume: z.boolean().default(false),
  data: z.string().optional().describe('dataset directory'),
});

describe('cliOptionsOf', () => {
  it('derives flag names, types, choices, defaults and help from the schema', () => {
    expect(cliOptionsOf(Schema, { env: { data: 'FILMGENRE_DATA' } })).toEqual({
      'learning-rate': { type: 'number', describe: 'Adam learning rate' },
      variant: { type: 'string', describe: 'which model', default: 'a', choices: ['a', 'b'] },
      resume: { type: 'boolean', default: false },
      data: { type: 'string', describe: 'dataset directory (env FILMGENRE_DATA)' },
    });
    expect(Object.keys(cliOptionsOf(Schema, { prefix: 'cnn', omit: ['resume'] }))).toEqual(['cnn-learning-rate', 'cnn-variant', 'cnn-data']);
  });

  it('parseCliOptions names the flag of a bad value', () => {
    expect(() => parseCliOptions(Schema, { learningRate: -1 }, 'cnn')).toThrow(/--cnn-learning-rate: /);
    expect(parseCliOptions(Schema, {})).toEqual({ variant: 'a', resume: false });
  });
});
