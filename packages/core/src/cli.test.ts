import { afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { cliOptionsOf, CommandLineError, exitOnCommandLineError, parseCliOptions, parseCommandLine, readCommandLine, readFlags } from './cli.js';

const Schema = z.object({
  learningRate: z.number().positive().optional().describe('Adam learning rate'),
  variant: z.enum(['a', 'b']).default('a').describe('which model'),
  resume: z.boolean().default(false),
  data: z.string().optional().describe('dataset directory'),
});

describe('cliOptionsOf', () => {
  it('derives flag names, types, choices, defaults and help from the schema', () => {
    expect(cliOptionsOf(Schema)).toEqual({
      'learning-rate': { field: 'learningRate', type: 'number', describe: 'Adam learning rate' },
      variant: { field: 'variant', type: 'string', describe: 'which model', default: 'a', choices: ['a', 'b'] },
      resume: { field: 'resume', type: 'boolean', default: false },
      data: { field: 'data', type: 'string', describe: 'dataset directory' },
    });
    expect(cliOptionsOf(Schema, { envPrefix: 'TOOL' })['learning-rate']).toMatchObject({ env: 'TOOL_LEARNING_RATE', describe: 'Adam learning rate (env TOOL_LEARNING_RATE)' });
    expect(Object.keys(cliOptionsOf(Schema, { prefix: 'cnn', omit: ['resume'] }))).toEqual(['cnn-learning-rate', 'cnn-variant', 'cnn-data']);
  });

  it('parseCliOptions names the flag of a bad value', () => {
    expect(() => parseCliOptions(Schema, { learningRate: -1 }, 'cnn')).toThrow(/--cnn-learning-rate: /);
    expect(parseCliOptions(Schema, {})).toEqual({ variant: 'a', resume: false });
  });
});

describe('readFlags and parseCommandLine', () => {
  afterEach(() => vi.restoreAllMocks());
  /** process.exit stopped where it was called, with what went to stdout and stderr. */
  function exits(run: () => unknown): { code: number; out: string; err: string } {
    let out = '';
    let err = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((out += String(chunk)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((err += String(chunk)), true));
    vi.spyOn(process, 'exit').mockImplementation((code) => {
      throw Object.assign(new Error('exit'), { code });
    });
    try {
      run();
    } catch (error) {
      return { code: (error as { code: number }).code, out, err };
    }
    throw new Error('did not exit');
  }

  it('reads the flags given, typed by the schema, the last of a repeated one winning; defaults come from the schema', () => {
    const sections = [{ options: cliOptionsOf(Schema) }];
    expect(readFlags(['--learning-rate', '0.01', '--resume', '--variant=b', '--variant', 'a'], sections, 'x')).toEqual({ 'learning-rate': 0.01, resume: true, variant: 'a' });
    expect(parseCommandLine(Schema, 'x', ['--learning-rate=2e-3', '--data', 'd'])).toEqual({ learningRate: 0.002, variant: 'a', resume: false, data: 'd' });
    expect(parseCommandLine(Schema, 'x', [])).toEqual({ variant: 'a', resume: false });
  });

  it('returns arguments that are not flags as `_` when the command takes them (a list of files), and refuses them otherwise', () => {
    const sections = [{ options: cliOptionsOf(Schema) }];
    expect(readFlags(['a.jsonl', '--data', 'd', 'b.jsonl'], sections, 'x', { positionals: true })).toEqual({ _: ['a.jsonl', 'b.jsonl'], data: 'd' });
    expect(exits(() => exitOnCommandLineError('tool', () => readFlags(['a.jsonl'], sections, 'tool')))).toMatchObject({ code: 2, err: expect.stringMatching(/Unexpected argument 'a.jsonl'/) });
  });

  it('--help prints each option with its help, choices and default, by section, and exits 0', () => {
    const { code, out } = exits(() => exitOnCommandLineError('tool [options]', () => readFlags(['--help'], [{ title: 'Run:', options: cliOptionsOf(Schema) }], 'tool [options]')));
    expect(code).toBe(0);
    expect(out).toMatch(/^tool \[options\]\n\nRun:\n/);
    expect(out).toMatch(/--variant +which model \[one of a, b; default "a"\]/);
    expect(out).toMatch(/--learning-rate +Adam learning rate \[number\]/);
  });

  it('refuses an unknown flag, a number that is not one and a bad value by name, with exit code 2', () => {
    expect(exits(() => parseCommandLine(Schema, 'tool', ['--bogus']))).toMatchObject({ code: 2, err: expect.stringMatching(/Unknown option '--bogus'/) });
    expect(exits(() => parseCommandLine(Schema, 'tool', ['--learning-rate', 'fast']))).toMatchObject({ code: 2, err: expect.stringMatching(/--learning-rate: expected a number, got 'fast'/) });
    expect(exits(() => parseCommandLine(Schema, 'tool', ['--learning-rate', '-1']))).toMatchObject({ code: 2 });
    expect(exits(() => parseCommandLine(Schema, 'tool', ['--learning-rate=-1']))).toMatchObject({ code: 2, err: expect.stringMatching(/--learning-rate: /) });
    expect(exits(() => parseCommandLine(Schema, 'tool', ['--variant', 'c']))).toMatchObject({ code: 2, err: expect.stringMatching(/--variant: /) });
  });

  it('a transformed field keeps its flag, type, default and help', () => {
    const schema = z.object({ models: z.string().default('a,b').describe('which models').transform((v) => v.split(',')) });
    expect(cliOptionsOf(schema)).toEqual({ models: { field: 'models', type: 'string', describe: 'which models', default: 'a,b' } });
    expect(parseCommandLine(schema, 'x', ['--models', 'c,d'])).toEqual({ models: ['c', 'd'] });
  });

  it('reads a list repeated or comma-separated, a flag named apart from its field, a default computed at start-up, and variables a flag wins over', () => {
    const schema = z.object({
      origins: z.array(z.string()).default(() => []).meta({ description: 'allowed origins', flag: 'origin', defaultText: 'none' }),
      sizes: z.array(z.int().positive()).default([1, 32]).describe('batch sizes'),
      workers: z.int().positive().default(() => 4).meta({ description: 'workers', defaultText: 'one per core' }),
    });
    const read = (args: string[], env: NodeJS.ProcessEnv = {}) => readCommandLine(schema, 'tool', args, { envPrefix: 'TOOL', env });
    expect(read(['--origin', 'a', '--origin', 'b,c', '--sizes', '4,8'])).toEqual({ origins: ['a', 'b', 'c'], sizes: [4, 8], workers: 4 });
    expect(read([], { TOOL_ORIGIN: 'x,y', TOOL_WORKERS: '3' })).toEqual({ origins: ['x', 'y'], sizes: [1, 32], workers: 3 });
    expect(read(['--workers', '2'], { TOOL_WORKERS: '3' }).workers).toBe(2);
    expect(() => read(['--sizes', '4,x'])).toThrow(/--sizes: expected a number, got 'x'/);
    expect(() => read(['--origin', 'a', '--workers', '0'])).toThrow(/^--workers: /);
    const help = (() => { try { read(['--help']); } catch (error) { return error as CommandLineError; } })();
    expect(help?.exitCode).toBe(0);
    expect(help?.message).toMatch(/--origin +allowed origins \(env TOOL_ORIGIN\) \[string; repeat or comma-separate; default none\]/);
    expect(help?.message).toMatch(/--workers +workers \(env TOOL_WORKERS\) \[number; default one per core\]/);
  });
});
