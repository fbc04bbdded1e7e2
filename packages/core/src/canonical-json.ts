/**
 * JSON with every object's keys in code-point order, so the same value always gives the same text
 * whatever order its keys were built in. Digests of settings (checkpoint identities) and of model
 * metadata are taken over it: changing it would invalidate every checkpoint and model directory.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v);
}
