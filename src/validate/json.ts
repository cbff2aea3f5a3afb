/** A JSON text that parsed, but names one member twice in an object: the last would silently win. */
export class DuplicateMember extends Error {
  constructor() {
    super('an object in the JSON names a member twice');
  }
}

/**
 * JSON.parse, refusing what it would silently accept: a member name twice in one object. Two readers of
 * such a document (a proxy, an auditor, this server) could each see a different value. Throws
 * SyntaxError for invalid JSON and DuplicateMember for a repeated name.
 */
export function parseJsonStrict(text: string): unknown {
  const value: unknown = JSON.parse(text);
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
