import { firstStringWhere } from './json.ts';

/**
 * Characters a reader cannot see, or that change how the text around them reads: controls (Cc),
 * format characters (Cf: bidi marks, overrides and isolates, zero-width characters, the BOM, the soft
 * hyphen, U+061C, most tags), line and paragraph separators (Zl, Zp), the whole tag block
 * U+E0000–E007F, every other default-ignorable code point (variation selectors, which can carry
 * hidden bytes after an emoji; Hangul fillers such as U+3164; U+034F; Mongolian selectors), private-use
 * characters (Co: any font may draw anything, or nothing) and unassigned code points (Cn: no meaning
 * yet, and a later Unicode version may make them invisible), plus the blank braille pattern U+2800.
 * Text shown to a person who decides on it must be free of them, or a reviewer can be shown something
 * other than what was stored. The cost: emoji with a variation selector (e.g. U+2764 U+FE0F) are refused.
 */
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}\p{Co}\p{Cn}\u{E0000}-\u{E007F}\u2800]/u;

/** What hasInvisible refuses, for error descriptions. */
export const INVISIBLE_KINDS = 'control, format (invisible or bidirectional), separator, tag, other default-ignorable (such as variation selectors or fillers), private-use or unassigned characters';

export function hasInvisible(text: string): boolean {
  return INVISIBLE.test(text);
}

/** The first string (value or member name) in parsed JSON with a character hasInvisible finds, as a path. */
export function invisibleIn(value: unknown): string | undefined {
  return firstStringWhere(value, hasInvisible);
}
