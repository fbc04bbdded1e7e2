// One model in its own thread. The main thread parses HTTP and decodes posters while each model
// runs its batch here, so on a multi-core machine the models and the request handling overlap
// instead of queueing on one event loop.
import { loadModel } from '@filmgenre/model-registry';
import { encoderRuntimeLabel, resolveEncoderRuntime } from '@filmgenre/onnx-runtime';
import { initBackend } from '@filmgenre/tf-runtime';
import * as tf from '@tensorflow/tfjs';
import { parentPort, workerData } from 'node:worker_threads';
import type { WorkerCall, WorkerReply, WorkerStart } from './protocol.js';

/** A member (predict posters or overviews) or the fusion (predict its members' outputs by key). */
interface Callable {
  predict(input: never): Promise<Float32Array>;
  predictWithFeatures?(input: never): Promise<{ probabilities: Float32Array; features: Float32Array; featureDim: number }>;
  dispose(): void;
}

const port = parentPort;
if (!port) throw new Error('worker-entry must run in a worker thread');
const start = workerData as WorkerStart;
const send = (reply: WorkerReply, transfer: ArrayBuffer[] = []) => port.postMessage(reply, transfer);

/** Float32Arrays of the result, moved (not copied) to the main thread. */
function buffersOf(result: unknown): ArrayBuffer[] {
  const arrays = result instanceof Float32Array ? [result] : Object.values(result as object).filter((v) => v instanceof Float32Array);
  const unique = new Set(arrays.map((a) => a.buffer as ArrayBuffer));
  return [...unique];
}

async function load(): Promise<Callable> {
  const backend = await initBackend(start.backend, { log: () => {}, wasmThreads: start.threads });
  // The loader the directory's metadata names (model-registry): any kind, any key.
  const model = (await loadModel(start.dir)) as Callable;
  send({ type: 'ready', backend, encoders: encoderRuntimeLabel(resolveEncoderRuntime(), backend.name) });
  return model;
}

let model: Callable;
try {
  model = await load();
} catch (error) {
  send({ type: 'load-failed', message: (error as Error).message });
  port.close();
  process.exit(1);
}

port.on('message', (call: WorkerCall) => {
  void (async () => {
    try {
      let result: unknown;
      if (call.method === 'numTensors') result = tf.memory().numTensors;
      else if (call.method === 'predict') result = await model.predict(call.input as never);
      else if (model.predictWithFeatures) result = await model.predictWithFeatures(call.input as never);
      else throw new Error(`${start.key} model has no predictWithFeatures`);
      send({ id: call.id, ok: true, result }, typeof result === 'number' ? [] : buffersOf(result));
    } catch (error) {
      send({ id: call.id, ok: false, message: (error as Error).message });
    }
  })();
});
