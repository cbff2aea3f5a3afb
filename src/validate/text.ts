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
