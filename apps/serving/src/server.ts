import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { ServingApp } from './app.js';

export interface RunningServer {
  server: Server;
  /** The bound address, e.g. http://127.0.0.1:3000 */
  url: string;
  /**
   * Graceful stop: no new connections, in-flight requests finish (up to `timeoutMs`, then the
   * remaining connections are cut), queued model calls are answered. Idempotent.
   */
  close(timeoutMs?: number): Promise<void>;
}

export async function listen(serving: ServingApp, options: { host: string; port: number; logger?: Logger }): Promise<RunningServer> {
  const server = createServer(serving.app);
  // Keep-alive sockets must outlive a typical proxy's idle timeout, or the proxy reuses a socket we closed.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;

  let closing: Promise<void> | undefined;
  const close = (timeoutMs = 10_000): Promise<void> => {
    closing ??= (async () => {
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      // server.close() only stops accepting; idle keep-alive sockets would hold it open until they time out.
      server.closeIdleConnections();
      const timer = setTimeout(() => {
        options.logger?.warn({ inFlight: serving.inFlight(), timeoutMs }, 'shutdown: grace period over, cutting remaining connections');
        server.closeAllConnections();
      }, timeoutMs);
      timer.unref();
      // Draining marks responses `Connection: close`, so busy keep-alive sockets end after their answer.
      const drained = serving.drain();
      const idleSweep = setInterval(() => server.closeIdleConnections(), 100);
      idleSweep.unref();
      try {
        await drained;
        await stopped;
      } finally {
        clearTimeout(timer);
        clearInterval(idleSweep);
      }
    })();
    return closing;
  };
  return { server, url, close };
}
