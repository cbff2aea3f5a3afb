/**
 * Characters a reader cannot see, or that change how the text around them reads: controls (Cc),
 * format characters (Cf: bidi marks, overrides and isolates, zero-width characters, the BOM, the soft
 * hyphen, U+061C, most tags), line and paragraph separators (Zl, Zp), and the whole tag block
 * U+E0000–E007F (part of it unassigned). Text shown to a person who decides on it must be free of them,
 * or a reviewer can be shown something other than what was stored.
 */
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\u{E0000}-\u{E007F}]/u;

export function hasInvisible(text: string): boolean {
  return INVISIBLE.test(text);
}

/** The first string (value or member name) in parsed JSON with a character hasInvisible finds, as a path. */
export function invisibleIn(value: unknown, path = ''): string | undefined {
  if (typeof value === 'string') return hasInvisible(value) ? path || '(root)' : undefined;
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) {
      const found = invisibleIn(v, `${path}[${i}]`);
      if (found !== undefined) return found;
    }
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (hasInvisible(k)) return path ? `${path}.(key)` : '(key)';
      const found = invisibleIn(v, path ? `${path}.${k}` : k);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}
