import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CommandLineError, cliOptionsOf } from '@filmgenre/core';
import { defaultConfig, ENV_PREFIX, parseConfig, ServingConfigSchema } from './config.js';

describe('parseConfig', () => {
  it('has the documented defaults', () => {
    const config = parseConfig([], {});
    expect(config).toEqual(defaultConfig());
    expect(config).toMatchObject({
      modelsDir: 'models', host: '127.0.0.1', port: 3000, maxUploadBytes: 10 * 1024 * 1024, maxOverviewChars: 10_000,
      maxInputPixels: 25_000_000, batchWindowMs: 2, maxBatch: 32, batchMaxWaitMs: 50, corsOrigins: [], backend: 'auto',
      inference: 'workers', modelThreads: 1, posterWorkers: availableParallelism(), maxPosterBatch: 8,
    });
  });

  it('sets where the models run, by flag or SERVING_* variable', () => {
    expect(parseConfig(['--inference', 'inline', '--model-threads', '2'], {})).toMatchObject({ inference: 'inline', modelThreads: 2 });
    expect(parseConfig([], { SERVING_POSTER_WORKERS: '3', SERVING_MAX_POSTER_BATCH: '4' })).toMatchObject({ posterWorkers: 3, maxPosterBatch: 4 });
    expect(() => parseConfig(['--inference', 'gpu'], {})).toThrow(/--inference/);
    expect(() => parseConfig(['--poster-workers', '0'], {})).toThrow(/--poster-workers/);
  });

  it('reads SERVING_* variables, and flags win over them', () => {
    const env = { SERVING_PORT: '8081', SERVING_MODELS_DIR: '/srv/models', SERVING_CORS_ORIGIN: 'https://a.example,https://b.example', SERVING_MAX_BATCH: '8' };
    expect(parseConfig([], env)).toMatchObject({ port: 8081, modelsDir: '/srv/models', corsOrigins: ['https://a.example', 'https://b.example'], maxBatch: 8 });
    expect(parseConfig(['--port', '9000', '--max-batch', '4'], env)).toMatchObject({ port: 9000, maxBatch: 4, modelsDir: '/srv/models' });
    // PORT, as container platforms set it, when SERVING_PORT is not.
    expect(parseConfig([], { PORT: '8080' }).port).toBe(8080);
    expect(parseConfig([], { PORT: '8080', SERVING_PORT: '8081' }).port).toBe(8081);
  });

  it('accepts repeated --cors-origin flags and every limit flag', () => {
    const config = parseConfig([
      '--cors-origin', 'https://a.example', '--cors-origin', 'https://b.example', '--max-upload-bytes', '1000',
      '--max-overview-chars', '50', '--max-input-pixels', '1000000', '--batch-window-ms', '0', '--backend', 'cpu', '--host', '0.0.0.0',
    ], {});
    expect(config).toMatchObject({
      corsOrigins: ['https://a.example', 'https://b.example'], maxUploadBytes: 1000, maxOverviewChars: 50, maxInputPixels: 1_000_000,
      batchWindowMs: 0, backend: 'cpu', host: '0.0.0.0',
    });
  });

  it('refuses bad values and unknown flags with a readable message', () => {
    expect(() => parseConfig(['--port', 'abc'], {})).toThrow(/--port/);
    expect(() => parseConfig(['--port', '70000'], {})).toThrow(CommandLineError);
    expect(() => parseConfig(['--max-batch', '0'], {})).toThrow(/--max-batch/);
    expect(() => parseConfig(['--backend', 'gpu'], {})).toThrow(/--backend/);
    expect(() => parseConfig(['--bogus-flag'], {})).toThrow(/bogus-flag/i);
    expect(() => parseConfig(['--headers-timeout-ms', '70000'], {})).toThrow(/--headers-timeout-ms: must not exceed --request-timeout-ms/);
  });
});

describe('one options object', () => {
  const options = Object.entries(cliOptionsOf(ServingConfigSchema, { envPrefix: ENV_PREFIX }));

  it('--help lists every flag with its environment variable and default, and is not an error', () => {
    let help: CommandLineError | undefined;
    try {
      parseConfig(['--help'], {});
    } catch (error) {
      help = error as CommandLineError;
    }
    expect(help?.exitCode).toBe(0);
    const text = help!.message.replace(/\s+/g, ' ');
    for (const [flag, option] of options) {
      expect(text).toContain(`--${flag}`);
      expect(text).toContain(`(env ${option.env})`);
      expect(text).toContain(`default ${option.defaultText ?? JSON.stringify(option.default)}`);
    }
  });

  it("the README's options table lists exactly these flags, with these defaults", () => {
    const readme = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('### Options'), readme.indexOf('## API'));
    const rows = [...section.matchAll(/^\| `--([a-z-]+)` \| ([^|]+) \|/gm)].map((m) => [m[1]!, m[2]!.replace(/`/g, '').trim()] as const);
    expect(rows.map(([flag]) => flag).sort()).toEqual(options.map(([flag]) => flag).sort());
    for (const [flag, cell] of rows) {
      const option = Object.fromEntries(options)[flag]!;
      const fallback = option.defaultText ?? String(option.default);
      expect(cell.startsWith(fallback), `${flag}: README says '${cell}', the code '${fallback}'`).toBe(true);
    }
  });
});
