import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { firstStringWhere } from './json.ts';
import { hasInvisible, INVISIBLE_KINDS } from './text.ts';

// One validator instance for the project: admin bodies, configuration, and later policy documents.
const ajv = new Ajv({ allErrors: false, strict: true, useDefaults: false, coerceTypes: false });
// Free text a person reads to decide (names, review comments, reasons): the same rule as the intent.
ajv.addFormat('visible-text', { type: 'string', validate: (s: string) => !hasInvisible(s) });

export function compileSchema(schema: object): ValidateFunction {
  return ajv.compile(schema);
}

/** A caller's mistake in a named field; answered as 400 with `{error, error_description, field}`. */
export class ValidationError extends Error {
  readonly field: string | undefined;
  readonly status: number;
  readonly code: string;
  constructor(message: string, field?: string, status = 400, code = 'invalid_request') {
    super(message);
    this.field = field;
    this.status = status;
    this.code = code;
  }
}

export function firstError(errors: ErrorObject[] | null | undefined): { field: string | undefined; message: string } {
  const e = errors?.[0];
  if (!e) return { field: undefined, message: 'is invalid' };
  const base = e.instancePath.replace(/^\//, '').replaceAll('/', '.');
  if (e.keyword === 'additionalProperties') {
    const extra = String(e.params.additionalProperty);
    return { field: base ? `${base}.${extra}` : extra, message: 'is not a recognised field' };
  }
  if (e.keyword === 'required') {
    const missing = String(e.params.missingProperty);
    return { field: base ? `${base}.${missing}` : missing, message: 'is required' };
  }
  if (e.keyword === 'format' && e.params.format === 'visible-text') {
    return { field: base || undefined, message: `must not contain ${INVISIBLE_KINDS}` };
  }
  if (e.keyword === 'enum') {
    return { field: base || undefined, message: `must be one of: ${(e.params.allowedValues as unknown[]).join(', ')}` };
  }
  return { field: base || undefined, message: e.message ?? 'is invalid' };
}

/** Validates `value` against `validate` and returns it typed, or throws a ValidationError naming the field. */
export function check<T>(validate: ValidateFunction, value: unknown): T {
  if (!validate(value)) {
    const { field, message } = firstError(validate.errors);
    throw new ValidationError(field ? `${field} ${message}` : `body ${message}`, field);
  }
  return value as T;
}

/** Text storage can hold: well-formed Unicode (no lone surrogate) without NUL, which PostgreSQL refuses. */
export function storableText(s: string): boolean {
  return s.isWellFormed() && !s.includes('\0');
}

/** The first string (value or key) in parsed JSON that is not storableText, as a path. */
export function malformedString(value: unknown): string | undefined {
  return firstStringWhere(value, (s) => !storableText(s));
}
