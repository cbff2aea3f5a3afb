import type { Context } from 'koa';
import { decodeUtf8, readRawBody } from './body.ts';

/**
 * The most parameters one form body or query string may carry. oidc-provider's parser (node:querystring)
 * stops at 1,000 and drops the rest without a word, so a parameter past that point would be seen by
 * anything in front of intentgate but not decided on. Far fewer are ever needed; beyond this the
 * request is refused, never truncated.
 */
export const MAX_PARAMETERS = 100;

/** Parameters whose value is JSON, where tab, line feed and carriage return are legitimate whitespace. */
const JSON_VALUED = new Set(['authorization_details']);
const CONTROL = /\p{Cc}/u;
const CONTROL_NOT_JSON_WHITESPACE = /(?![\t\n\r])\p{Cc}/u;
const NONE: ReadonlySet<string> = new Set();

/** A form or query string intentgate will not read: answered 400 `invalid_request`. */
export class FormError extends Error {
  readonly status = 400;
  /** The parameter whose value is badly encoded or holds a control character, when that is the fault. */
  readonly badValueOf: string | undefined;
  constructor(message: string, badValueOf?: string) {
    super(message);
    this.badValueOf = badValueOf;
  }
}

export type FormParams = Map<string, string[]>;

// Names are echoed only when they look like a parameter name, never as the caller typed them.
function label(name: string): string {
  return /^[a-z_]{1,64}$/.test(name) ? name : 'a parameter';
}

function decode(raw: string, name?: string): string {
  try {
    // decodeURIComponent refuses a stray `%` and any escape that is not well-formed UTF-8.
    return decodeURIComponent(raw.replaceAll('+', ' '));
  } catch {
    throw new FormError(`${name === undefined ? 'a parameter name' : label(name)} is not validly percent-encoded UTF-8`, name);
  }
}

/**
 * application/x-www-form-urlencoded read strictly: at most MAX_PARAMETERS, every escape valid UTF-8,
 * no NUL or other control character (JSON whitespace aside in JSON-valued parameters), and no
 * parameter twice unless it is in `repeatable`. Returns the parameters and the same form re-encoded,
 * which any later parser reads exactly as here.
 */
export function parseForm(text: string, repeatable: ReadonlySet<string> = NONE): { params: FormParams; canonical: string } {
  const params: FormParams = new Map();
  if (text === '') return { params, canonical: '' };
  const segments = text.split('&');
  if (segments.length > MAX_PARAMETERS) throw new FormError(`more than ${MAX_PARAMETERS} parameters; this server reads no more than that`);
  for (const segment of segments) {
    if (segment === '') continue;
    const eq = segment.indexOf('=');
    const name = decode(eq < 0 ? segment : segment.slice(0, eq));
    const value = eq < 0 ? '' : decode(segment.slice(eq + 1), name);
    if (name === '') throw new FormError('a parameter has no name');
    if (CONTROL.test(name)) throw new FormError('a parameter name must not contain control characters');
    if ((JSON_VALUED.has(name) ? CONTROL_NOT_JSON_WHITESPACE : CONTROL).test(value)) {
      throw new FormError(`${label(name)} must not contain control characters (NUL included)`, name);
    }
    const values = params.get(name);
    if (values && !repeatable.has(name)) throw new FormError(`${label(name)} must not be provided twice`);
    if (values) values.push(value);
    else params.set(name, [value]);
  }
  const canonical = [...params].flatMap(([k, vs]) => vs.map((v) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)).join('&');
  return { params, canonical };
}

/**
 * Reads a form body at intentgate's edge and hands the re-encoded form to oidc-provider, which reads
 * `ctx.request.body` once the request stream has been consumed. Refuses other content types, other
 * charsets, bytes that are not UTF-8, and everything parseForm refuses.
 */
export async function readForm(ctx: Context, limit: number, repeatable: ReadonlySet<string> = NONE): Promise<FormParams> {
  const type = ctx.get('content-type');
  if (type && !ctx.is('application/x-www-form-urlencoded')) throw new FormError('Content-Type must be application/x-www-form-urlencoded');
  const charset = ctx.request.charset.toLowerCase();
  if (charset && charset !== 'utf-8' && charset !== 'utf8') throw new FormError('the form must be UTF-8');
  const raw = await readRawBody(ctx, limit);
  if (!type && raw.length > 0) throw new FormError('Content-Type must be application/x-www-form-urlencoded');
  let text: string;
  try {
    text = decodeUtf8(raw);
  } catch (err) {
    throw new FormError((err as Error).message);
  }
  const { params, canonical } = parseForm(text, repeatable);
  (ctx.request as { body?: unknown }).body = canonical;
  return params;
}

/**
 * The query string of any request, held to the same rules (no parameter repeats in a query intentgate
 * reads). Raw bytes outside printable ASCII must be percent-encoded.
 */
export function checkQuery(ctx: Context): void {
  const q = ctx.querystring;
  if (!q) return;
  if (/[^\x21-\x7E]/.test(q)) throw new FormError('the query string must be percent-encoded');
  parseForm(q);
}
