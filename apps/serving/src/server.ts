import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Server as NetServer, type AddressInfo, type Socket } from 'node:net';
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

export type HttpLimits = Pick<ServingConfig, 'maxHeaderBytes' | 'headersTimeoutMs' | 'requestTimeoutMs' | 'maxConnections'>;

/** Keep-alive sockets must outlive a typical proxy's idle timeout, or the proxy reuses a socket we closed. */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;
/** After an answer written straight to the socket, how long the client may go on sending before the socket is cut. */
const LINGER_MS = 2_000;
/**
 * On a stop, how long the port stays open at least, and how long a connection accepted before it
 * closed may take to send its request: connections already accepted (or in the kernel's backlog) are
 * answered 503 SHUTTING_DOWN instead of being reset.
 */
const STOP_LISTEN_MS = 500;

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
function answerNodeErrors(server: Server, limits: HttpLimits, overflow: WeakSet<Socket>, logger?: Logger): void {
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

  // At most maxConnections open (each holds a file descriptor; 19,950 half-sent connections once used
  // them all up and starved new requests). Past it, the oldest connection with no request under way
  // (idle keep-alive, or still sending its headers: a slow or half-sent client) is closed to make
  // room; when every one has a request under way, the new one is answered 503 and closed.
  const requestUnderWay = new Map<Socket, boolean>(); // in order of arrival
  server.on('connection', (socket: Socket) => {
    requestUnderWay.set(socket, false);
    socket.once('close', () => requestUnderWay.delete(socket));
    if (requestUnderWay.size <= limits.maxConnections) return;
    for (const [other, busy] of requestUnderWay) {
      if (!busy && other !== socket) {
        other.destroy();
        requestUnderWay.delete(other);
        return;
      }
    }
    overflow.add(socket); // its request is answered 503 (see listen), then it closes
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    if (!requestUnderWay.has(socket)) return;
    requestUnderWay.set(socket, true);
    res.once('close', () => {
      if (requestUnderWay.has(socket)) requestUnderWay.set(socket, false);
    });
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
    maxConnections: options.http?.maxConnections ?? defaults.maxConnections,
  };
  /** Connections accepted past maxConnections while every other one had a request under way. */
  const overflow = new WeakSet<Socket>();
  const server = createServer({
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    // Node checks the two timeouts above only this often (30 s by default, which would stretch them).
    connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(limits.headersTimeoutMs / 4))),
    // Express answers a missing Host header, so that the answer has the JSON shape (see app.ts).
    requireHostHeader: false,
  }, (req, res) => {
    if (!overflow.has(req.socket)) return void serving.app(req, res);
    const error = new ApiError('OVERLOADED', `${limits.maxConnections} connections are open, each with a request under way; retry later`, { 'Retry-After': '1' });
    options.logger?.warn({ status: error.status, code: error.code }, 'request refused by the HTTP server');
    const body = JSON.stringify(errorBody(error));
    res.writeHead(error.status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body), 'Retry-After': '1', Connection: 'close' });
    res.end(body);
  });
  answerNodeErrors(server, limits, overflow, options.logger);
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
      const timer = setTimeout(() => {
        options.logger?.warn({ inFlight: serving.inFlight(), timeoutMs }, 'shutdown: grace period over, cutting remaining connections');
        server.closeAllConnections();
      }, timeoutMs);
      timer.unref();
      const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.min(ms, timeoutMs)));
      try {
        // The port stays open while in-flight requests finish (and at least STOP_LISTEN_MS): a request
        // arriving now is answered 503 SHUTTING_DOWN with `Connection: close`, never reset.
        await Promise.all([serving.drain(), pause(STOP_LISTEN_MS)]);
        // net's close, not http's: http's also closes at once the connections that have not sent their
        // request yet, which would reset them; they get STOP_LISTEN_MS to send it, then idle ones close.
        const stopped = new Promise<void>((resolve) => NetServer.prototype.close.call(server, () => resolve()));
        await pause(STOP_LISTEN_MS);
        server.closeIdleConnections();
        const idleSweep = setInterval(() => server.closeIdleConnections(), 100);
        idleSweep.unref();
        try {
          await stopped;
        } finally {
          clearInterval(idleSweep);
        }
      } finally {
        clearTimeout(timer);
      }
    })();
    return closing;
  };
  return { server, url, close };
}
