/** Every error code a client can receive, with its HTTP status. Codes are stable; messages may change. */
export const ERROR_CODES = {
  NO_INPUT: 400,
  EMPTY_OVERVIEW: 400,
  OVERVIEW_TOO_LONG: 400,
  UNKNOWN_FIELD: 400,
  MALFORMED_MULTIPART: 400,
  TOO_MANY_PARTS: 400,
  POSTER_NOT_AN_IMAGE: 400,
  POSTER_CORRUPT: 400,
  POSTER_TOO_LARGE: 413,
  POSTER_TOO_MANY_PIXELS: 422,
  UNSUPPORTED_MEDIA_TYPE: 415,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  NOT_READY: 503,
  SHUTTING_DOWN: 503,
  INTERNAL: 500,
} as const;
export type ErrorCode = keyof typeof ERROR_CODES;

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
    this.status = ERROR_CODES[code];
  }
}

export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

export function errorBody(error: ApiError): ErrorBody {
  return { error: { code: error.code, message: error.message } };
}
