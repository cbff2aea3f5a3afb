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
  const out: string[] = [];
  write(value, '$', out, new Set());
  return out.join('');
}

/** The canonical form as UTF-8 bytes, ready to hash or sign. */
export function canonicalBytes(value: unknown): Buffer {
  return Buffer.from(canonicalize(value), 'utf8');
}

function write(value: unknown, path: string, out: string[], ancestors: Set<object>): void {
  switch (typeof value) {
    case 'string':
      if (!value.isWellFormed()) {
        throw new TypeError(`cannot canonicalize a string that is not well-formed Unicode (it has a lone surrogate) at ${path}`);
      }
      out.push(JSON.stringify(value));
      return;
    case 'number':
      out.push(serializeNumber(value, path));
      return;
    case 'boolean':
      out.push(value ? 'true' : 'false');
      return;
    case 'undefined':
      throw new TypeError(`cannot canonicalize undefined at ${path}: JSON has no undefined (use null, or leave the member out)`);
    case 'function':
      throw new TypeError(`cannot canonicalize a function at ${path}`);
    case 'symbol':
      throw new TypeError(`cannot canonicalize a symbol at ${path}`);
    case 'bigint':
      throw new TypeError(`cannot canonicalize a bigint at ${path}: JSON numbers are IEEE 754 doubles (convert it to a string or number)`);
    case 'object':
      break;
    default:
      throw new TypeError(`cannot canonicalize a value of type ${typeof value} at ${path}`);
  }
  if (value === null) {
    out.push('null');
    return;
  }
  if (ancestors.has(value)) throw new TypeError(`cannot canonicalize a cyclic structure: ${path} refers back to one of its ancestors`);
  const proto: unknown = Object.getPrototypeOf(value);
  if (Array.isArray(value)) {
    if (proto !== Array.prototype) throw new TypeError(`cannot canonicalize ${describe(value)} at ${path}: only plain arrays are JSON arrays`);
    ancestors.add(value);
    out.push('[');
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out.push(',');
      const itemPath = `${path}[${i}]`;
      if (!Object.hasOwn(value, i)) throw new TypeError(`cannot canonicalize a sparse array: ${itemPath} is a hole`);
      write(value[i], itemPath, out, ancestors);
    }
    out.push(']');
    ancestors.delete(value);
    return;
  }
  if (proto !== Object.prototype && proto !== null) {
    throw new TypeError(`cannot canonicalize ${describe(value)} at ${path}: only plain objects and arrays are JSON (convert it to plain data first)`);
  }
  const record = value as Record<string, unknown>;
  if (Object.getOwnPropertySymbols(record).some((s) => Object.prototype.propertyIsEnumerable.call(record, s))) {
    throw new TypeError(`cannot canonicalize an object with symbol-keyed properties at ${path}: JSON member names are strings`);
  }
  ancestors.add(value);
  // The default sort compares strings as sequences of UTF-16 code units, which is what §3.2.3 requires.
  const keys = Object.keys(record).sort();
  out.push('{');
  let first = true;
  for (const key of keys) {
    const memberPath = `${path}${memberSuffix(key)}`;
    if (!key.isWellFormed()) {
      throw new TypeError(`cannot canonicalize a member name that is not well-formed Unicode (it has a lone surrogate) at ${memberPath}`);
    }
    const member = record[key];
    if (member === undefined) continue;
    if (!first) out.push(',');
    first = false;
    out.push(JSON.stringify(key), ':');
    write(member, memberPath, out, ancestors);
  }
  out.push('}');
  ancestors.delete(value);
}

function serializeNumber(value: number, path: string): string {
  if (!Number.isFinite(value)) {
    throw new TypeError(`cannot canonicalize ${String(value)} at ${path}: JSON numbers must be finite`);
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
