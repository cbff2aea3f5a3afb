import { MAX_JSON_DEPTH, tooDeep } from '../../packages/resource/src/protocol/json_depth.ts';

export { MAX_JSON_DEPTH, tooDeep };

/** Valid JSON this server refuses to read; the message says why. */
export class UnacceptedJson extends Error {}

/** A JSON text that parsed, but names one member twice in an object: the last would silently win. */
export class DuplicateMember extends UnacceptedJson {
  constructor() {
    super('an object in the JSON names a member twice');
  }
}

export class TooDeep extends UnacceptedJson {
  constructor() {
    super(`arrays and objects in the JSON nest more than ${MAX_JSON_DEPTH} levels deep`);
  }
}

/**
 * The first string in parsed JSON, value or member name, that `refused` picks out, as a path (`a.b[2]`,
 * `a.(key)` for a member name, `(root)` for a bare string); undefined when there is none. Recursive:
 * run it on JSON whose depth is already bounded (parseJsonStrict, tooDeep).
 */
export function firstStringWhere(value: unknown, refused: (s: string) => boolean, path = ''): string | undefined {
  if (typeof value === 'string') return refused(value) ? path || '(root)' : undefined;
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) {
      const found = firstStringWhere(v, refused, `${path}[${i}]`);
      if (found !== undefined) return found;
    }
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (refused(k)) return path ? `${path}.(key)` : '(key)';
      const found = firstStringWhere(v, refused, path ? `${path}.${k}` : k);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

/**
 * JSON.parse, refusing what it would silently accept: a member name twice in one object. Two readers of
 * such a document (a proxy, an auditor, this server) could each see a different value. Throws
 * SyntaxError for invalid JSON, DuplicateMember for a repeated name and TooDeep past MAX_JSON_DEPTH.
 */
export function parseJsonStrict(text: string): unknown {
  // V8's JSON.parse does not recurse, so it is safe to run before the depth check.
  const value: unknown = JSON.parse(text);
  if (tooDeep(value)) throw new TooDeep();
  if (hasDuplicateMember(text)) throw new DuplicateMember();
  return value;
}

// Scans text JSON.parse has accepted: only strings, brackets, commas and colons matter. Each open
// object keeps the names seen so far; a string is a name right after `{` or after `,` in an object.
function hasDuplicateMember(text: string): boolean {
  const open: Array<Set<string> | null> = [];
  let expectName = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const names = open.at(-1);
      if (expectName && names) {
        const name = JSON.parse(text.slice(i, j + 1)) as string;
        if (names.has(name)) return true;
        names.add(name);
        expectName = false;
      }
      i = j;
    } else if (c === '{') {
      open.push(new Set());
      expectName = true;
    } else if (c === '[') {
      open.push(null);
      expectName = false;
    } else if (c === '}' || c === ']') {
      open.pop();
      expectName = false;
    } else if (c === ',') {
      expectName = open.at(-1) instanceof Set;
    } else if (c === ':') {
      expectName = false;
    }
  }
  return false;
}
