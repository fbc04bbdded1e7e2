import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { ServingApp } from './app.js';
import { defaultConfig, type ServingConfig } from './config.js';
import { ApiError, errorBody, rawErrorResponse } from './errors.js';

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

export type HttpLimits = Pick<ServingConfig, 'maxHeaderBytes' | 'headersTimeoutMs' | 'requestTimeoutMs'>;

/** Keep-alive sockets must outlive a typical proxy's idle timeout, or the proxy reuses a socket we closed. */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;
/** After an answer written straight to the socket, how long the client may go on sending before the socket is cut. */
const LINGER_MS = 2_000;

/** Node's own errors for a connection → a code of the error registry and a message. */
function clientErrorOf(error: NodeJS.ErrnoException, limits: HttpLimits): ApiError {
  switch (error.code) {
    case 'HPE_HEADER_OVERFLOW':
      return new ApiError('HEADERS_TOO_LARGE', `the request line and headers are over ${limits.maxHeaderBytes} bytes`);
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new ApiError('REQUEST_TIMEOUT', `the request did not arrive in time (headers within ${limits.headersTimeoutMs} ms, the whole request within ${limits.requestTimeoutMs} ms)`);
    default:
      // llhttp's reason (e.g. HPE_INVALID_HEADER_TOKEN) says what was wrong and reveals nothing of the server.
      return new ApiError('BAD_REQUEST', `the HTTP request could not be parsed (${error.code ?? 'parse error'})`);
  }
}

/**
 * Gives the errors Node answers by itself, before Express sees a request, the same JSON shape as every
 * other error: `clientError` (parse errors → 400, headers over maxHeaderSize → 431, request timeout →
 * 408), CONNECT (405; Node would drop the connection), Expect other than 100-continue (417). Where Node
 * leaves no room for an answer (the client is gone, or a response is already half sent), the connection
 * is closed as Node would. The HTTP/1.1 Host check is left to Express (see app.ts), for the same reason.
 */
function answerNodeErrors(server: Server, limits: HttpLimits, logger?: Logger): void {
  const answered = new WeakSet<Duplex>();
  const writeRaw = (socket: Duplex, error: ApiError, detail: Record<string, unknown>) => {
    answered.add(socket);
    logger?.warn({ status: error.status, code: error.code, ...detail }, 'request refused by the HTTP server');
    socket.end(rawErrorResponse(error));
    // Lingering close: the client may still be sending (the rest of a 100 KB URL); closing a socket with
    // unread input resets it, and the client would see the reset instead of the answer.
    const linger = setTimeout(() => socket.destroy(), LINGER_MS);
    linger.unref();
    socket.once('close', () => clearTimeout(linger));
  };

  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    // The parser keeps failing on whatever the client still sends after the answer: already handled.
    if (answered.has(socket)) return;
    const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse })._httpMessage;
    if (error.code === 'ECONNRESET' || error.code === 'EPIPE' || !socket.writable || inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    writeRaw(socket, clientErrorOf(error, limits), { reason: error.code });
  });

  server.on('connect', (req: IncomingMessage, socket: Duplex) => {
    writeRaw(socket, new ApiError('METHOD_NOT_ALLOWED', 'CONNECT is not supported; this is not a proxy'), { method: req.method });
  });

  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    const error = new ApiError('EXPECTATION_FAILED', `Expect: ${String(req.headers.expect)} is not supported (only 100-continue)`);
    logger?.warn({ status: error.status, code: error.code }, 'request refused by the HTTP server');
    const body = JSON.stringify(errorBody(error));
    res.writeHead(error.status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body), Connection: 'close' });
    res.end(body);
  });
}

export async function listen(serving: ServingApp, options: { host: string; port: number; logger?: Logger; http?: Partial<HttpLimits> }): Promise<RunningServer> {
  const defaults = defaultConfig();
  const limits: HttpLimits = {
    maxHeaderBytes: options.http?.maxHeaderBytes ?? defaults.maxHeaderBytes,
    headersTimeoutMs: options.http?.headersTimeoutMs ?? defaults.headersTimeoutMs,
    requestTimeoutMs: options.http?.requestTimeoutMs ?? defaults.requestTimeoutMs,
  };
  const server = createServer({
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    // Node checks the two timeouts above only this often (30 s by default, which would stretch them).
    connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(limits.headersTimeoutMs / 4))),
    // Express answers a missing Host header, so that the answer has the JSON shape (see app.ts).
    requireHostHeader: false,
  }, serving.app);
  answerNodeErrors(server, limits, options.logger);
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
