import { CommandLineError } from '@filmgenre/core';
import { initBackend } from '@filmgenre/tf-runtime';
import { pino } from 'pino';
import { createApp, type ServingApp } from './app.js';
import { parseConfig, type ServingConfig } from './config.js';
import { describePlan, disposeModels, inspectModelsDir, loadModels, metadataOf, modelKeys, type ServingModels } from './models.js';
import { listen, type RunningServer } from './server.js';

/** Startup failures go to stderr as one plain sentence (and to the log), then exit 1. */
function refuse(message: string, code = 1): never {
  process.stderr.write(`serving: ${message}\n`);
  process.exit(code);
}

/** Runs the server: parses the options, loads the models, listens, and stops on SIGTERM or SIGINT. */
export async function serve(): Promise<void> {
  let config: ServingConfig;
  try {
    config = parseConfig(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof CommandLineError)) throw error;
    if (error.exitCode === 0) {
      process.stdout.write(error.message);
      process.exit(0);
    }
    refuse(`invalid configuration: ${error.message} (see --help)`, 2);
  }
  const logger = pino({ level: config.logLevel, base: { service: 'serving' } });

  // Signal handlers come first: SIGTERM or SIGINT at any point, loading included, is a graceful stop
  // (before, a signal during loading killed the process at once, without a word).
  let phase: 'starting' | 'loading' | 'ready' = 'starting';
  /** What exists so far, for stop() to close. */
  const live: { serving?: ServingApp; listening?: Promise<RunningServer>; models?: ServingModels } = {};
  let stopping = false;
  // pino writes asynchronously, and process.exit() right after a log call can lose that line or write
  // it before one still waiting for libuv's thread pool (seen here while models load). So the process
  // ends by itself once nothing is left to do (every pending write done), or after 1 s if something
  // still holds it (model workers still loading, tfjs' wasm handles).
  const exit = (code: number) => {
    process.exitCode = code;
    setTimeout(() => process.exit(code), 1_000).unref();
  };
  const stop = async (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal, phase, inFlight: live.serving?.inFlight() ?? 0 }, 'shutting down: finishing in-flight requests');
    try {
      // A listen still under way finishes first, so that its port is closed too.
      const running = await live.listening?.catch(() => undefined);
      await running?.close(config.shutdownTimeoutMs);
      // While loading, nothing was served: the model workers simply end with the process.
      if (live.models) disposeModels(live.models);
      logger.info({ phase }, 'stopped');
      exit(0);
    } catch (error) {
      logger.error({ err: error }, 'error during shutdown');
      exit(1);
    }
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));

  // Cheap checks first, so a wrong directory is reported before anything heavy starts.
  let found: ReturnType<typeof inspectModelsDir>;
  try {
    found = inspectModelsDir(config.modelsDir);
  } catch (error) {
    logger.fatal({ err: error }, 'refusing to start');
    refuse((error as Error).message);
  }
  logger.info({ modelsDir: config.modelsDir, models: describePlan(found) }, 'models directory checked');

  // A fusion fitted on a member since retrained alone: the others are served, unless told to refuse.
  for (const [key, reason] of Object.entries(found.unavailable)) {
    if (config.staleFusion === 'refuse') {
      logger.fatal({ model: key, reason }, 'refusing to start: a model of the directory cannot be served (--stale-fusion refuse)');
      refuse(`${key} model cannot be served: ${reason}`);
    }
    logger.warn({ model: key, reason }, 'model unavailable: serving the others (--stale-fusion refuse would refuse to start)');
  }

  phase = 'loading';
  let modelsLoading: Promise<ServingModels>;
  if (config.inference === 'workers') {
    modelsLoading = loadModels(config.modelsDir, {
      workers: {
        backend: config.backend,
        threadsPerModel: config.modelThreads,
        posterWorkers: config.posterWorkers,
        // A model thread that dies (out of memory, a native crash) leaves nothing to serve with: exit
        // non-zero so the supervisor restarts the process, rather than answer 500 forever.
        onWorkerExit: (key, error) => {
          if (stopping) return;
          logger.fatal({ err: error, model: key }, 'model worker died');
          process.exit(1);
        },
      },
    });
  } else {
    const backend = await initBackend(config.backend, { log: (line) => logger.info(line), wasmThreads: config.modelThreads }).catch((error: Error) => refuse(error.message));
    modelsLoading = loadModels(config.modelsDir, { backendThreads: backend.threads });
  }
  const serving = createApp({ models: modelsLoading, config, logger });
  live.serving = serving;

  // Listen before the weights are loaded: orchestrators see /healthz alive and /readyz 503 until ready.
  live.listening = listen(serving, { host: config.host, port: config.port, logger, http: config });
  const running = await live.listening.catch((error: NodeJS.ErrnoException) =>
    refuse(error.code === 'EADDRINUSE' ? `${config.host}:${config.port} is already in use (pass --port)` : `cannot listen on ${config.host}:${config.port}: ${error.message}`),
  );
  if (stopping) return; // stop() closes it and ends the process
  logger.info({ url: running.url }, 'listening');

  try {
    await serving.ready;
  } catch (error) {
    if (stopping) return; // stop() ends the process
    logger.fatal({ err: error }, 'refusing to serve: models failed to load');
    await running.close(0);
    refuse((error as Error).message);
  }
  const models = await modelsLoading;
  live.models = models;
  if (stopping) return; // loaded while stopping: stop() ends the process
  phase = 'ready';
  logger.info({ url: running.url, ...models.runtime, ...(config.inference === 'workers' ? { posterWorkers: config.posterWorkers } : {}), models: modelKeys(models).map((k) => `${k}:${metadataOf(models, k).modality}/${metadataOf(models, k).variant}`) }, 'ready');
}
