import type { Context } from 'koa';
import { malformedString } from '../validate/schema.ts';
import { parseJsonStrict, UnacceptedJson } from '../validate/json.ts';

export class BodyError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** Reads the whole body, refusing more than `limit` bytes whatever Content-Length claims. */
export async function readRawBody(ctx: Context, limit: number): Promise<Buffer> {
  const declared = ctx.request.length;
  if (declared !== undefined && declared > limit) throw new BodyError(413, `request body exceeds ${limit} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      ctx.req.destroy();
      throw new BodyError(413, `request body exceeds ${limit} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, size);
}

/**
 * Request bytes as UTF-8 text, exactly: invalid UTF-8 and a leading byte order mark are refused (400).
 * TextDecoder would otherwise drop the BOM silently, so this server would read `grant_type` where a
 * proxy comparing bytes sees `\uFEFFgrant_type`.
 */
export function decodeUtf8(raw: Uint8Array): string {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(raw);
  } catch {
    throw new BodyError(400, 'the body is not valid UTF-8');
  }
  if (text.startsWith('\uFEFF')) throw new BodyError(400, 'the body must not start with a byte order mark (U+FEFF)');
  return text;
}

/** A JSON body: `application/json`, UTF-8, within the limit, an object at the top. */
/** Whether the request carries a body at all (any length, or chunked), as opposed to an empty one. */
export function hasBody(ctx: Context): boolean {
  return ctx.get('transfer-encoding') !== '' || (ctx.request.length ?? 0) > 0;
}

export async function readJsonObject(ctx: Context, limit: number): Promise<Record<string, unknown>> {
  if (!ctx.is('application/json')) throw new BodyError(415, 'Content-Type must be application/json');
  return jsonObjectFrom(await readRawBody(ctx, limit));
}

/**
 * For endpoints whose every member is optional: no body at all (whatever the Content-Type, or none) is `{}`;
 * a body that is there is read exactly as `readJsonObject` reads it.
 */
export async function readOptionalJsonObject(ctx: Context, limit: number): Promise<Record<string, unknown>> {
  const raw = await readRawBody(ctx, limit);
  if (raw.length === 0) return {};
  if (!ctx.is('application/json')) throw new BodyError(415, 'Content-Type must be application/json');
  return jsonObjectFrom(raw);
}

function jsonObjectFrom(raw: Buffer): Record<string, unknown> {
  let text: string;
  let parsed: unknown;
  try {
    text = decodeUtf8(raw);
    parsed = parseJsonStrict(text);
  } catch (err) {
    if (err instanceof BodyError) throw err;
    if (err instanceof UnacceptedJson) throw new BodyError(400, `body is not accepted: ${err.message}`);
    throw new BodyError(400, 'body is not valid JSON');
  }
  // PostgreSQL text cannot hold NUL; refuse it here rather than fail in storage.
  if (/\\u0000/i.test(text)) throw new BodyError(400, 'body must not contain NUL characters');
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new BodyError(400, 'body must be a JSON object');
  const bad = malformedString(parsed);
  if (bad) throw new BodyError(400, `${bad} is not well-formed Unicode text (a lone surrogate or NUL)`);
  return parsed as Record<string, unknown>;
}
