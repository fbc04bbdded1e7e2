// POST /v1/predict, from bytes on the wire to a validated { poster?, overview? }: the multipart
// parser with its limits, the form's schema (which the OpenAPI document is generated from) and the
// mapping of every parsing or validation failure to a code of the error registry.
import { POSTER_FORMATS } from '@filmgenre/data-images';
import type { RequestHandler, Response } from 'express';
import multer from 'multer';
import { z } from 'zod';
import type { ServingConfig } from './config.js';
import { ApiError, type ErrorCode } from './errors.js';

export type RequestLimits = Pick<ServingConfig, 'maxUploadBytes' | 'maxOverviewChars' | 'maxInputPixels'> & Partial<Pick<ServingConfig, 'maxBufferedUploadBytes'>>;

/** A predict request that passed every check of the form (the poster's bytes are not looked at yet). */
export interface PredictInput {
  poster?: Buffer;
  overview?: string;
}

/**
 * The overview as the model gets it: control characters other than whitespace and format characters
 * (zero-width spaces and joiners, U+FEFF, soft hyphens, bidi marks…) removed, then trimmed. They are
 * invisible, absent from the training overviews, and would otherwise split or glue words.
 */
export function normalizeOverview(raw: string): string {
  return raw.replace(/\p{Cf}/gu, '').replace(/\p{Cc}/gu, (c) => (/\s/.test(c) ? c : '')).trim();
}

/** Letters, digits, punctuation or symbols, except the ones that render blank (Hangul fillers, braille blank). */
const VISIBLE = /(?![\u115F\u1160\u3164\uFFA0\u2800])[\p{L}\p{N}\p{P}\p{S}]/u;

export function hasVisibleCharacter(text: string): boolean {
  return VISIBLE.test(text);
}

const codePoints = (s: string) => [...s].length;
const POSTER_AS_TEXT = "'poster' must be sent as a file (a form part with a filename), not as text";
const withCode = (code: ErrorCode, message: string) => ({ params: { code }, message });

/**
 * The form's schema, with this instance's limits. The handler validates every request with it and
 * the OpenAPI document is generated from it (`z.toJSONSchema`, input side); the `meta` keywords are
 * what JSON Schema can say of the checks (JSON Schema's maxLength counts code points, as the check does).
 */
export function predictFormSchema(limits: RequestLimits) {
  const poster = z
    .custom<Buffer>((v) => Buffer.isBuffer(v), withCode('UNKNOWN_FIELD', POSTER_AS_TEXT))
    .meta({
      type: 'string',
      format: 'binary',
      description: `Poster image (${POSTER_FORMATS.join(', ')}), at most ${limits.maxUploadBytes} bytes and ${limits.maxInputPixels} pixels.`,
    } as Record<string, unknown>)
    .refine((b) => b.length > 0, withCode('POSTER_NOT_AN_IMAGE', "'poster' is empty"));
  const overview = z
    .string(withCode('UNKNOWN_FIELD', "'overview' must be sent once, as a plain text field"))
    .meta({
      minLength: 1,
      maxLength: limits.maxOverviewChars,
      description: 'Plot overview in English. Control and format characters (e.g. zero-width spaces) are removed and the text is trimmed before the checks; it must keep at least one visible character.',
    })
    .transform(normalizeOverview)
    .refine(hasVisibleCharacter, withCode('EMPTY_OVERVIEW', "'overview' has no visible character"))
    .superRefine((text, ctx) => {
      const chars = codePoints(text);
      if (chars > limits.maxOverviewChars) {
        ctx.addIssue({ code: 'custom', params: { code: 'OVERVIEW_TOO_LONG' }, message: `'overview' has ${chars} characters; at most ${limits.maxOverviewChars} are accepted` });
      }
    });
  return z
    .object({ poster: poster.optional(), overview: overview.optional() })
    .strict()
    .refine((form) => form.poster !== undefined || form.overview !== undefined, withCode('NO_INPUT', "send a 'poster' file, an 'overview' text field, or both"))
    .meta({
      description: 'At least one of poster and overview. No other field is accepted, and each at most once.',
      anyOf: [{ required: ['poster'] }, { required: ['overview'] }],
    } as Record<string, unknown>);
}

/** The first failure of a form, as an API error (an unknown field first: it explains the others). */
export function formError(issues: z.core.$ZodIssue[]): ApiError {
  const unknown = issues.find((i) => i.code === 'unrecognized_keys');
  if (unknown) {
    const keys = unknown.keys.map((k) => `'${k}'`).join(', ');
    return new ApiError('UNKNOWN_FIELD', `unknown form field(s): ${keys}; only 'poster' (file) and 'overview' (text) are accepted`);
  }
  const issue = issues[0]!;
  const code = (issue.code === 'custom' ? (issue.params?.['code'] as ErrorCode | undefined) : undefined) ?? 'UNKNOWN_FIELD';
  return new ApiError(code, issue.message);
}

/**
 * Parses and validates the multipart form of a predict request (multer, in memory, with limits from
 * the config), then hands on `PredictInput` (see `predictInputOf`). Every failure is an ApiError.
 */
export function createPredictRequestParser(limits: RequestLimits): RequestHandler {
  const schema = predictFormSchema(limits);
  const upload = multer({
    storage: multer.memoryStorage(),
    limits: {
      fileSize: limits.maxUploadBytes,
      files: 1,
      fields: 4,
      parts: 6,
      // UTF-8 takes up to 4 bytes per character; the character limit itself is checked after parsing.
      fieldSize: limits.maxOverviewChars * 4 + 1024,
      fieldNameSize: 100,
      headerPairs: 20,
    },
  }).single('poster');

  // Bytes of request bodies being buffered: each request reserves its Content-Length (or the most a
  // form may hold, when the length is not given) before multer reads a byte, and gives it back when
  // its response closes. 200 held 10 MB uploads once raised the RSS by 1 GB.
  const mostPerRequest = limits.maxUploadBytes + limits.maxOverviewChars * 4 + 64 * 1024;
  const budget = limits.maxBufferedUploadBytes ?? Number.POSITIVE_INFINITY;
  let buffered = 0;

  return (req, res, next) => {
    if (!req.is('multipart/form-data')) {
      return next(new ApiError('UNSUPPORTED_MEDIA_TYPE', `send multipart/form-data with a 'poster' file and/or an 'overview' field (got ${req.headers['content-type'] ?? 'no content type'})`));
    }
    const declared = Number(req.headers['content-length']);
    const reserved = Number.isSafeInteger(declared) && declared >= 0 ? Math.min(declared, mostPerRequest) : mostPerRequest;
    if (buffered + reserved > budget) {
      return next(new ApiError('OVERLOADED', `uploads being received already hold ${buffered} of the ${budget} bytes this server buffers; retry later`, { 'Retry-After': '1' }));
    }
    buffered += reserved;
    res.once('close', () => (buffered -= reserved));
    upload(req, res, (error?: unknown) => {
      if (error !== undefined) return next(multipartError(error, limits));
      const body = { ...((req.body ?? {}) as Record<string, unknown>) };
      // A text field named like the file field would be merged with the file below: refuse it by name.
      if ('poster' in body) return next(new ApiError('UNKNOWN_FIELD', POSTER_AS_TEXT));
      const parsed = schema.safeParse(req.file ? { ...body, poster: req.file.buffer } : body);
      if (!parsed.success) return next(formError(parsed.error.issues));
      res.locals['predictInput'] = parsed.data satisfies PredictInput;
      next();
    });
  };
}

/** The validated input that createPredictRequestParser left for the handler. */
export function predictInputOf(res: Response): PredictInput {
  const input = res.locals['predictInput'] as PredictInput | undefined;
  if (!input) throw new Error('predictInputOf: the predict request parser did not run');
  return input;
}

/** Maps multer's and busboy's errors to stable API errors. */
function multipartError(error: unknown, limits: RequestLimits): ApiError {
  if (error instanceof multer.MulterError) {
    switch (error.code as string) {
      case 'LIMIT_FILE_SIZE':
        return new ApiError('POSTER_TOO_LARGE', `'poster' is larger than ${limits.maxUploadBytes} bytes`);
      case 'LIMIT_FIELD_VALUE':
        return error.field === 'overview'
          ? new ApiError('OVERVIEW_TOO_LONG', `'overview' is longer than ${limits.maxOverviewChars} characters`)
          : new ApiError('UNKNOWN_FIELD', `unknown form field '${error.field ?? ''}'`);
      case 'LIMIT_UNEXPECTED_FILE':
        return new ApiError('UNKNOWN_FIELD', error.field === 'poster'
          ? "only one 'poster' file is accepted"
          : `unexpected file field '${error.field ?? ''}'; the poster goes in a file field named 'poster'`);
      case 'LIMIT_FILE_COUNT':
        return new ApiError('UNKNOWN_FIELD', "only one 'poster' file is accepted");
      case 'LIMIT_PART_COUNT':
      case 'LIMIT_FIELD_COUNT':
      case 'LIMIT_FIELD_KEY':
      case 'LIMIT_FIELD_NESTING':
      case 'LIMIT_FIELD_ARRAY_INDEX':
        return new ApiError('TOO_MANY_PARTS', `the form has too many or too large parts (${error.message.toLowerCase()})`);
      default:
        return new ApiError('MALFORMED_MULTIPART', `the multipart body is malformed (${error.message.toLowerCase()})`);
    }
  }
  // Anything else raised while parsing comes from busboy reading a broken body (no boundary,
  // truncated part, bad header): the client's fault, and never worth a stack trace.
  const message = error instanceof Error ? error.message : String(error);
  return new ApiError('MALFORMED_MULTIPART', `the multipart body is malformed (${message.replace(/^multipart: /i, '').toLowerCase()})`);
}
