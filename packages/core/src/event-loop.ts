/**
 * Lets signal handlers, timers and I/O callbacks run. A long loop of tfjs work must await it between
 * steps: on the wasm backend every await of a kernel resolves without returning to the event loop, so
 * a Ctrl-C would otherwise wait for the whole loop.
 */
export const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));
