import type { BackendInfo, BackendRequest } from '@filmgenre/tf-runtime';

/** What the main thread tells a model worker when it starts it. */
export interface WorkerStart {
  /** The model's key (its directory name), for messages. */
  key: string;
  dir: string;
  backend: BackendRequest;
  /** XNNPACK threads of this worker's wasm instance. */
  threads: number;
}

export type WorkerMethod = 'predict' | 'predictWithFeatures' | 'numTensors';

export interface WorkerCall {
  id: number;
  method: WorkerMethod;
  input?: unknown;
}

export type WorkerReply =
  | { type: 'ready'; backend: BackendInfo; encoders: string }
  | { type: 'load-failed'; message: string }
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; message: string };
