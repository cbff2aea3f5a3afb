import type { ValidateFunction } from 'ajv';
import { ConfigError } from '../config/index.ts';
import { compileSchema, firstError, malformedString } from '../validate/schema.ts';
import { invalidDetails } from './errors.ts';
import { parseJsonStrict, UnacceptedJson } from '../validate/json.ts';
import { INVISIBLE_KINDS, invisibleIn } from '../validate/text.ts';

export interface AuthorizationDetail {
  type: string;
  action?: string;
  purpose?: string;
  object?: { type?: string; id?: string; [k: string]: unknown };
  [k: string]: unknown;
}

/** RFC 9396 authorization_details against the types declared in configuration. Compiled once. */
export class DetailTypes {
  readonly #validators = new Map<string, ValidateFunction>();

  constructor(types: Record<string, object>) {
    for (const [name, schema] of Object.entries(types)) {
      try {
        this.#validators.set(name, compileSchema(schema));
      } catch (err) {
        throw new ConfigError(`authorization_details_types.${name} is not a valid JSON Schema: ${(err as Error).message}`);
      }
    }
  }

  get names(): string[] {
    return [...this.#validators.keys()];
  }

  parse(raw: string | undefined, maxBytes: number): AuthorizationDetail[] {
    if (raw === undefined) return [];
    if (Buffer.byteLength(raw) > maxBytes) throw invalidDetails(`authorization_details must be at most ${maxBytes} bytes`);
    let parsed: unknown;
    try {
      parsed = parseJsonStrict(raw);
    } catch (err) {
      if (err instanceof UnacceptedJson) throw invalidDetails(`authorization_details is not accepted: ${err.message}`);
      throw invalidDetails('authorization_details is not valid JSON');
    }
    if (!Array.isArray(parsed) || parsed.length === 0) throw invalidDetails('authorization_details must be a non-empty JSON array');
    const bad = malformedString(parsed);
    if (bad) throw invalidDetails(`authorization_details${bad} is not well-formed Unicode text (a lone surrogate or NUL)`);
    // Reviewers read these, and policies match on them: an id with a zero-width or bidi character would
    // look like another one.
    const hidden = invisibleIn(parsed);
    if (hidden) throw invalidDetails(`authorization_details${hidden} must not contain ${INVISIBLE_KINDS}`);
    if (parsed.length > 20) throw invalidDetails('authorization_details may hold at most 20 entries');
    return parsed.map((entry, i) => {
      if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) throw invalidDetails(`authorization_details[${i}] must be an object`);
      const type = (entry as { type?: unknown }).type;
      if (typeof type !== 'string') throw invalidDetails(`authorization_details[${i}].type is required`);
      const validate = this.#validators.get(type);
      if (!validate) throw invalidDetails(`authorization_details[${i}].type is not a declared type (see authorization_details_types_supported)`);
      if (!validate(entry)) {
        const { field, message } = firstError(validate.errors);
        throw invalidDetails(`authorization_details[${i}]${field ? `.${field}` : ''} ${message}`);
      }
      return entry as AuthorizationDetail;
    });
  }
}

/** Canonical form for comparing details (key order must not matter). */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
