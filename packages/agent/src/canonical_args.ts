import { AgentInputError } from './errors.ts';

/** Tool arguments are small: bounded so a cache key can never grow without limit. */
export const MAX_ARGS_BYTES = 64 * 1024;
export const MAX_ARGS_DEPTH = 32;

/**
 * A deterministic JSON text for tool-call arguments: object keys sorted (by UTF-16 code units, as
 * RFC 8785), no whitespace, only JSON values. Object members that are `undefined` are left out, as
 * JSON.stringify does; anything else that JSON cannot represent exactly is refused rather than coerced.
 */
export function canonicalArgs(value: unknown, field = 'args'): string {
  let size = 0;
  const seen = new Set<object>();
  const out: string[] = [];
  const emit = (s: string) => {
    size += s.length;
    if (size > MAX_ARGS_BYTES) throw new AgentInputError(field, `must serialise to at most ${MAX_ARGS_BYTES} characters`);
    out.push(s);
  };
  const walk = (v: unknown, path: string, depth: number): void => {
    if (depth > MAX_ARGS_DEPTH) throw new AgentInputError(path, `nests deeper than ${MAX_ARGS_DEPTH} levels`);
    if (v === null || typeof v === 'boolean') return emit(String(v));
    if (typeof v === 'string') return emit(JSON.stringify(v));
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw new AgentInputError(path, 'must be a finite number');
      return emit(JSON.stringify(v));
    }
    if (typeof v !== 'object') throw new AgentInputError(path, `a ${typeof v} is not a JSON value`);
    if (seen.has(v)) throw new AgentInputError(path, 'is circular');
    seen.add(v);
    if (Array.isArray(v)) {
      emit('[');
      v.forEach((item, i) => {
        if (i > 0) emit(',');
        walk(item, `${path}[${i}]`, depth + 1);
      });
      emit(']');
    } else {
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) throw new AgentInputError(path, 'must be a plain object, array or JSON primitive');
      const keys = Object.keys(v).filter((k) => (v as Record<string, unknown>)[k] !== undefined).sort();
      emit('{');
      keys.forEach((k, i) => {
        if (i > 0) emit(',');
        emit(`${JSON.stringify(k)}:`);
        walk((v as Record<string, unknown>)[k], `${path}.${k}`, depth + 1);
      });
      emit('}');
    }
    seen.delete(v);
  };
  walk(value, field, 0);
  return out.join('');
}
