import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigError, defaultConfig, parseConfig } from './config.js';

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
    expect(() => parseConfig(['--port', '70000'], {})).toThrow(ConfigError);
    expect(() => parseConfig(['--max-batch', '0'], {})).toThrow(/--max-batch/);
    expect(() => parseConfig(['--backend', 'gpu'], {})).toThrow(/--backend/);
    expect(() => parseConfig(['--bogus-flag'], {})).toThrow(/bogus-flag/i);
    expect(() => parseConfig(['--headers-timeout-ms', '70000'], {})).toThrow(/--headers-timeout-ms: must not exceed --request-timeout-ms/);
  });
});

describe('one options object', () => {
  it('--help lists every flag with its environment variable and default', async () => {
    const { OPTION_KEYS, envOf, flagOf, defaultTextOf, HelpRequested } = await import('./config.js');
    const lines: string[] = [];
    const log = console.log;
    console.log = (...args: unknown[]) => void lines.push(args.join(' '));
    try {
      expect(() => parseConfig(['--help'], {})).toThrow(HelpRequested);
    } finally {
      console.log = log;
    }
    const help = lines.join('\n').replace(/\s+/g, ' ');
    for (const key of OPTION_KEYS) {
      expect(help).toContain(`--${flagOf(key)}`);
      expect(help).toContain(`[env ${envOf(key)}]`);
      expect(help).toContain(`[default: ${defaultTextOf(key)}]`);
    }
  });

  it("the README's options table lists exactly these flags, with these defaults", async () => {
    const { OPTION_KEYS, flagOf, defaultTextOf } = await import('./config.js');
    const readme = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('### Options'), readme.indexOf('## API'));
    const rows = [...section.matchAll(/^\| `--([a-z-]+)` \| ([^|]+) \|/gm)].map((m) => [m[1]!, m[2]!.replace(/`/g, '').trim()] as const);
    expect(rows.map(([flag]) => flag).sort()).toEqual(OPTION_KEYS.map(flagOf).sort());
    for (const [flag, cell] of rows) {
      const key = OPTION_KEYS.find((k) => flagOf(k) === flag)!;
      expect(cell.startsWith(defaultTextOf(key)), `${flag}: README says '${cell}', the code '${defaultTextOf(key)}'`).toBe(true);
    }
  });
});
