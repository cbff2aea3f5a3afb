import { ValidationError } from '../validate/schema.ts';

export type Scalar = string | number | boolean | null;
export const OPERATORS = ['eq', 'ne', 'lt', 'lte', 'gt', 'gte', 'in', 'nin', 'contains'] as const;
export type Operator = (typeof OPERATORS)[number];
/** One compiled attribute test: `bag[name] <op> value`. */
export interface AttrTest {
  readonly name: string;
  readonly op: Operator;
  readonly value: Scalar | readonly Scalar[];
}

const isScalar = (v: unknown): v is Scalar =>
  v === null || typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));
const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function scalarList(value: unknown, field: string): Scalar[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > 256) {
    throw new ValidationError(`${field} must be a non-empty list of at most 256 values`, field);
  }
  value.forEach((v, i) => {
    if (!isScalar(v)) throw new ValidationError(`${field}.${i} must be a string, number, boolean or null`, `${field}.${i}`);
  });
  return value as Scalar[];
}

function parseOne(name: string, raw: unknown, field: string): AttrTest {
  if (Array.isArray(raw)) return { name, op: 'in', value: scalarList(raw, field) };
  if (!isPlainObject(raw)) {
    if (!isScalar(raw)) throw new ValidationError(`${field} must be a value, a list or an operator`, field);
    return { name, op: 'eq', value: raw };
  }
  const keys = Object.keys(raw);
  for (const key of keys) {
    if (!(OPERATORS as readonly string[]).includes(key)) {
      throw new ValidationError(`${field}.${key} is not a recognised operator`, `${field}.${key}`);
    }
  }
  if (keys.length !== 1) throw new ValidationError(`${field} must have exactly one operator`, field);
  const op = keys[0] as Operator;
  const value = raw[op];
  const at = `${field}.${op}`;
  if (op === 'in' || op === 'nin') return { name, op, value: scalarList(value, at) };
  if (op === 'lt' || op === 'lte' || op === 'gt' || op === 'gte') {
    if (typeof value !== 'string' && !(typeof value === 'number' && Number.isFinite(value))) {
      throw new ValidationError(`${at} must be a number or a string`, at);
    }
    return { name, op, value };
  }
  if (!isScalar(value)) throw new ValidationError(`${at} must be a string, number, boolean or null`, at);
  return { name, op, value };
}

/** Validates and compiles an attribute-condition map (`when.object`, `when.user`, `when.client`). */
export function parseAttributes(map: Record<string, unknown>, field: string): AttrTest[] {
  return Object.entries(map).map(([name, raw]) => parseOne(name, raw, `${field}.${name}`));
}

/** Orders two values only when both are finite numbers or both strings; otherwise they are incomparable. */
function order(a: unknown, b: unknown): number | undefined {
  if (typeof a === 'number' && typeof b === 'number' && Number.isFinite(a)) return a === b ? 0 : a < b ? -1 : 1;
  if (typeof a === 'string' && typeof b === 'string') return a === b ? 0 : a < b ? -1 : 1;
  return undefined;
}

/**
 * Strict semantics on purpose (unlike Mongo's): no type coercion ("500" is not < 1000), a missing
 * attribute fails every positive test, and arrays match only through `contains`. `ne`/`nin` are the
 * negations of `eq`/`in`, so they hold for a missing attribute.
 */
export function testAttribute(bag: Record<string, unknown>, t: AttrTest): boolean {
  const v = Object.hasOwn(bag, t.name) ? bag[t.name] : undefined;
  switch (t.op) {
    case 'eq': return isScalar(v) && v === t.value;
    case 'ne': return !(isScalar(v) && v === t.value);
    case 'in': return isScalar(v) && (t.value as Scalar[]).includes(v);
    case 'nin': return !(isScalar(v) && (t.value as Scalar[]).includes(v));
    case 'contains': return Array.isArray(v) && v.includes(t.value);
    case 'lt': return order(v, t.value) === -1;
    case 'lte': { const o = order(v, t.value); return o === -1 || o === 0; }
    case 'gt': return order(v, t.value) === 1;
    case 'gte': { const o = order(v, t.value); return o === 1 || o === 0; }
  }
}
