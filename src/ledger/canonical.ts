/**
 * RFC 8785 JSON Canonicalization Scheme (JCS).
 *
 * The ledger hashes and signs JSON; two parties must derive the same bytes from the same data. JCS pins
 * down the three places ordinary JSON serialization is free to vary:
 *
 * - object members are sorted by their names compared as arrays of UTF-16 code units (§3.2.3);
 * - strings are serialized exactly as ECMAScript `JSON.stringify` does (§3.2.2.2): only `"` `\` and the
 *   C0 controls are escaped, `\b \t \n \f \r` use their short forms, the other controls `\u00xx` in lower
 *   case, everything else (including `/` and all non-ASCII) is emitted as is;
 * - numbers are serialized as ECMAScript `Number.prototype.toString` does (§3.2.2.3): the shortest decimal
 *   that reads back as the same IEEE 754 double, `-0` as `0`, exponent form outside [1e-7, 1e21).
 *
 * No whitespace is emitted (§3.2.1), and the result is encoded as UTF-8 (§3.2.4).
 *
 * Anything outside the I-JSON data model (RFC 7493) is refused with a TypeError naming where it was found,
 * rather than silently dropped or coerced as `JSON.stringify` would: a ledger that changed data while
 * canonicalizing it would hash something other than what it was given.
 *   - `undefined` at the top level or as an array element (object members whose value is `undefined` are
 *     omitted, as `JSON.stringify` omits them);
 *   - functions, symbols (as values or as property keys), bigints;
 *   - NaN and ±Infinity;
 *   - strings or member names that are not well-formed Unicode (a lone surrogate);
 *   - objects other than plain objects and arrays: Date, Map, Set, RegExp, Buffer and typed arrays, boxed
 *     primitives, class instances, and so on (convert them to plain data first);
 *   - sparse arrays, and cycles. (Shared, acyclic references are fine: each is serialized in place.)
 */

export function canonicalize(value: unknown): string {
  if (value === undefined) throw new TypeError('cannot canonicalize undefined: JSON has no undefined (at $)');
  const out = { text: '' };
  write(value, undefined, out, new Set());
  return out.text;
}

/**
 * Where a value sits, as a chain up to the root; spelled out (`$.a[0]["b c"]`) only for an error message,
 * so a value that canonicalizes builds no path strings; the output is one growing string. Together about
 * a quarter less CPU on a decision context than building every path and joining an array of pieces.
 */
type Path = { up: Path; key: string | number } | undefined;

function spell(path: Path): string {
  const parts: string[] = [];
  for (let p = path; p; p = p.up) parts.push(typeof p.key === 'number' ? `[${p.key}]` : memberSuffix(p.key));
  return `$${parts.reverse().join('')}`;
}

/** The canonical form as UTF-8 bytes, ready to hash or sign. */
export function canonicalBytes(value: unknown): Buffer {
  return Buffer.from(canonicalize(value), 'utf8');
}

function write(value: unknown, at: Path, out: { text: string }, ancestors: Set<object>): void {
  switch (typeof value) {
    case 'string':
      if (!value.isWellFormed()) {
        throw new TypeError(`cannot canonicalize a string that is not well-formed Unicode (it has a lone surrogate) at ${spell(at)}`);
      }
      out.text += JSON.stringify(value);
      return;
    case 'number':
      out.text += serializeNumber(value, at);
      return;
    case 'boolean':
      out.text += value ? 'true' : 'false';
      return;
    case 'undefined':
      throw new TypeError(`cannot canonicalize undefined at ${spell(at)}: JSON has no undefined (use null, or leave the member out)`);
    case 'function':
      throw new TypeError(`cannot canonicalize a function at ${spell(at)}`);
    case 'symbol':
      throw new TypeError(`cannot canonicalize a symbol at ${spell(at)}`);
    case 'bigint':
      throw new TypeError(`cannot canonicalize a bigint at ${spell(at)}: JSON numbers are IEEE 754 doubles (convert it to a string or number)`);
    case 'object':
      break;
    default:
      throw new TypeError(`cannot canonicalize a value of type ${typeof value} at ${spell(at)}`);
  }
  if (value === null) {
    out.text += 'null';
    return;
  }
  if (ancestors.has(value)) throw new TypeError(`cannot canonicalize a cyclic structure: ${spell(at)} refers back to one of its ancestors`);
  const proto: unknown = Object.getPrototypeOf(value);
  if (Array.isArray(value)) {
    if (proto !== Array.prototype) throw new TypeError(`cannot canonicalize ${describe(value)} at ${spell(at)}: only plain arrays are JSON arrays`);
    ancestors.add(value);
    out.text += '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out.text += ',';
      const item: Path = { up: at, key: i };
      if (!Object.hasOwn(value, i)) throw new TypeError(`cannot canonicalize a sparse array: ${spell(item)} is a hole`);
      write(value[i], item, out, ancestors);
    }
    out.text += ']';
    ancestors.delete(value);
    return;
  }
  if (proto !== Object.prototype && proto !== null) {
    throw new TypeError(`cannot canonicalize ${describe(value)} at ${spell(at)}: only plain objects and arrays are JSON (convert it to plain data first)`);
  }
  const record = value as Record<string, unknown>;
  if (Object.getOwnPropertySymbols(record).some((s) => Object.prototype.propertyIsEnumerable.call(record, s))) {
    throw new TypeError(`cannot canonicalize an object with symbol-keyed properties at ${spell(at)}: JSON member names are strings`);
  }
  ancestors.add(value);
  // The default sort compares strings as sequences of UTF-16 code units, which is what §3.2.3 requires.
  const keys = Object.keys(record).sort();
  out.text += '{';
  let first = true;
  for (const key of keys) {
    const member_: Path = { up: at, key };
    if (!key.isWellFormed()) {
      throw new TypeError(`cannot canonicalize a member name that is not well-formed Unicode (it has a lone surrogate) at ${spell(member_)}`);
    }
    const member = record[key];
    if (member === undefined) continue;
    if (!first) out.text += ',';
    first = false;
    out.text += `${JSON.stringify(key)}:`;
    write(member, member_, out, ancestors);
  }
  out.text += '}';
  ancestors.delete(value);
}

function serializeNumber(value: number, at: Path): string {
  if (!Number.isFinite(value)) {
    throw new TypeError(`cannot canonicalize ${String(value)} at ${spell(at)}: JSON numbers must be finite`);
  }
  // Number.prototype.toString is the serialization §3.2.2.3 specifies; it already writes -0 as "0".
  return Object.is(value, -0) ? '0' : String(value);
}

function describe(value: object): string {
  const tag = Object.prototype.toString.call(value).slice(8, -1);
  const ctor = (value as { constructor?: unknown }).constructor;
  const name = typeof ctor === 'function' && ctor.name !== '' ? ctor.name : undefined;
  if (name !== undefined && name !== tag && tag === 'Object') return `an instance of class ${name}`;
  const noun = name ?? tag;
  return `${/^[AEIO]/.test(noun) ? 'an' : 'a'} ${noun}`;
}

function memberSuffix(key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}
