import { POSTER_FORMATS } from '@filmgenre/data-images';
import { STATUS_CODES } from 'node:http';

/**
 * The one error registry: every code a client can receive, its HTTP status and what it means. The
 * handlers raise these codes, the OpenAPI document lists them per route from here, and a test checks
 * that the README's errors table says the same. Codes are stable; messages may change.
 *
 * `routes` says where a code can come from: `predict` (POST /v1/predict), `ready` (every route that
 * needs the models: /v1/predict, /v1/models, /readyz), `any` (any route), `unmatched` (a path or
 * method no route serves), `connection` (answered by the HTTP server itself, before Express sees a
 * request).
 */
export type ErrorRoute = 'predict' | 'ready' | 'any' | 'unmatched' | 'connection';

interface ErrorSpec {
  status: number;
  /** When the code is sent: the README and the OpenAPI document show this text. */
  description: string;
  routes: readonly ErrorRoute[];
}

export const ERRORS = {
  NO_INPUT: { status: 400, description: 'neither `poster` nor `overview`', routes: ['predict'] },
  EMPTY_OVERVIEW: { status: 400, description: '`overview` has no visible character: empty, or only whitespace, control or format characters (e.g. zero-width spaces U+200B, U+FEFF)', routes: ['predict'] },
  OVERVIEW_TOO_LONG: { status: 400, description: 'more than `--max-overview-chars` characters (Unicode code points, counted after removing control and format characters)', routes: ['predict'] },
  UNKNOWN_FIELD: { status: 400, description: 'a field other than `poster`/`overview`, a field sent twice, a second file', routes: ['predict'] },
  MALFORMED_MULTIPART: { status: 400, description: 'broken multipart body (no boundary, truncated part…)', routes: ['predict'] },
  TOO_MANY_PARTS: { status: 400, description: 'more parts or fields than a valid request can have', routes: ['predict'] },
  POSTER_NOT_AN_IMAGE: { status: 400, description: `empty file, or not ${POSTER_FORMATS.join('/')} (SVG is refused)`, routes: ['predict'] },
  POSTER_CORRUPT: { status: 400, description: 'header readable but the image does not decode (e.g. truncated JPEG)', routes: ['predict'] },
  POSTER_TOO_LARGE: { status: 413, description: 'upload over `--max-upload-bytes`', routes: ['predict'] },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, description: 'body not `multipart/form-data`', routes: ['predict'] },
  POSTER_TOO_MANY_PIXELS: { status: 422, description: 'header declares more than `--max-input-pixels` (width × height; a decompression bomb): refused before decoding', routes: ['predict'] },
  POSTER_SIDE_TOO_LONG: { status: 422, description: 'header declares a width or height over `--max-input-side`: refused before decoding', routes: ['predict'] },
  POSTER_ASPECT_RATIO_TOO_EXTREME: { status: 422, description: 'longer side over `--max-aspect-ratio` times the shorter one (e.g. 1 × 25,000,000): refused before decoding', routes: ['predict'] },
  POSTER_TOO_MANY_SCANS: { status: 422, description: 'a JPEG of more than `--max-jpeg-scans` scans (decode time grows with each one; a 654 KB scan bomb took 35 s): refused from its markers before decoding', routes: ['predict'] },
  POSTER_TOO_MANY_FRAMES: { status: 422, description: 'a GIF of more than `--max-gif-frames` frames (reading its header walks every frame): refused from its blocks before its header is read', routes: ['predict'] },
  POSTER_DECODE_TIMEOUT: { status: 422, description: 'decoding took longer than `--decode-timeout-ms` (an image that is slow to decode; send a smaller one)', routes: ['predict'] },
  POSTER_DECODE_BUSY: { status: 503, description: 'other posters slow to decode (over `--large-poster-pixels` of decode work, or GIF, TIFF, AVIF) hold the one-at-a-time decoder and this one could not start within `--decode-timeout-ms`, or 8 already wait; retry after `Retry-After` seconds', routes: ['predict'] },
  OVERLOADED: { status: 503, description: 'load shed before any work, with `Retry-After` seconds: the models would start on it later than `--queue-deadline-ms` behind the queued work (estimated from the queue and the measured time per item), its body would take the bodies being received over `--max-buffered-upload-bytes`, or `--max-connections` are open, each with a request under way', routes: ['predict', 'connection'] },
  MODEL_OUTPUT_INVALID: { status: 500, description: 'a model produced a non-finite probability (or one outside [0, 1]) for this input: a fault of the model, logged with its name, counted in `model_invalid_outputs_total`; never a 200 with `null`', routes: ['predict'] },
  NOT_FOUND: { status: 404, description: 'unknown route', routes: ['unmatched'] },
  METHOD_NOT_ALLOWED: { status: 405, description: 'known route, wrong method (with an `Allow` header); CONNECT on any path', routes: ['unmatched'] },
  NOT_READY: { status: 503, description: 'models still loading (or they failed to load)', routes: ['ready'] },
  SHUTTING_DOWN: { status: 503, description: 'server stopping', routes: ['ready'] },
  INTERNAL: { status: 500, description: 'a fault of the server (logged with its stack, never sent)', routes: ['any'] },
  BAD_REQUEST: { status: 400, description: 'a request the HTTP parser refuses (bad request line, header or chunked encoding; chunk extensions over 16 KB, which Node would answer 413), or an HTTP/1.1 request without `Host`; the connection is closed', routes: ['connection'] },
  REQUEST_TIMEOUT: { status: 408, description: 'headers not received within `--headers-timeout-ms`, or the whole request not within `--request-timeout-ms`; the connection is closed', routes: ['connection'] },
  HEADERS_TOO_LARGE: { status: 431, description: 'request line + headers over `--max-header-bytes` (e.g. a 100 KB URL, a huge cookie); the connection is closed', routes: ['connection'] },
  EXPECTATION_FAILED: { status: 417, description: 'an `Expect` header other than `100-continue`', routes: ['connection'] },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** Code → HTTP status, derived from the registry (kept for callers of the previous API). */
export const ERROR_CODES = Object.fromEntries(Object.entries(ERRORS).map(([code, spec]) => [code, spec.status])) as { [C in ErrorCode]: (typeof ERRORS)[C]['status'] };

/** The codes a route can answer with, given what it is (see ErrorRoute). */
export function errorCodesFor(...routes: ErrorRoute[]): ErrorCode[] {
  return (Object.keys(ERRORS) as ErrorCode[]).filter((code) => (ERRORS[code].routes as readonly ErrorRoute[]).some((r) => routes.includes(r)));
}

/** An error meant for the client: its code and message are sent as they are. */
export class ApiError extends Error {
  override name = 'ApiError';
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.status = ERRORS[code].status;
  }
}

export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

export function errorBody(error: ApiError): ErrorBody {
  return { error: { code: error.code, message: error.message } };
}

/**
 * A complete HTTP/1.1 response with the JSON error body, for answers written straight to a socket
 * (Node's `clientError`, where no Express response exists). It closes the connection.
 */
export function rawErrorResponse(error: ApiError): string {
  const body = JSON.stringify(errorBody(error));
  return [
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? 'Error'}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Cache-Control: no-store',
    'X-Content-Type-Options: nosniff',
    'Connection: close',
    '',
    body,
  ].join('\r\n');
}
