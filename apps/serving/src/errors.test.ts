import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ApiError, ERRORS, errorBody, rawErrorResponse, type ErrorCode } from './errors.js';

describe('the error registry', () => {
  it("is what the README's errors table says, row for row", () => {
    const readme = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('### Errors'), readme.indexOf('## Where the models run'));
    const rows = [...section.matchAll(/^\| (\d{3}) \| `([A-Z_]+)` \| (.+) \|$/gm)].map((m) => ({ status: Number(m[1]), code: m[2]!, description: m[3]! }));
    expect(rows).toEqual(Object.entries(ERRORS).map(([code, e]) => ({ status: e.status, code, description: e.description })));
  });

  it('gives every error its status, and a raw HTTP answer the same JSON body', () => {
    for (const code of Object.keys(ERRORS) as ErrorCode[]) {
      const error = new ApiError(code, 'a message');
      expect(error.status).toBe(ERRORS[code].status);
      const raw = rawErrorResponse(error);
      const [head, body] = raw.split('\r\n\r\n');
      expect(head).toMatch(new RegExp(`^HTTP/1\\.1 ${error.status} `));
      expect(head).toContain(`Content-Length: ${Buffer.byteLength(body!)}`);
      expect(JSON.parse(body!)).toEqual(errorBody(error));
    }
  });
});
