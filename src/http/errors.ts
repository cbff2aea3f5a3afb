import type { Context, Next } from 'koa';

const DESCRIPTION_MAX = 500;

/**
 * RFC 6749 §5.2 limits error_description to %x20-21 / %x23-5B / %x5D-7E. Descriptions may quote what a
 * request sent, so every character outside that set is written as its percent-encoded UTF-8 (a double
 * quote becomes a single one), and the text is bounded: CR, LF, TAB, bidi overrides or NUL from a
 * request never reach a client, a log viewer or a terminal as they were sent.
 */
export function safeDescription(text: string): string {
  const bounded = text.length > DESCRIPTION_MAX ? `${text.slice(0, DESCRIPTION_MAX)}...` : text;
  return bounded.replaceAll('"', "'").replace(/[^\x20\x21\x23-\x5B\x5D-\x7E]/gu, (c) =>
    [...Buffer.from(c, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''));
}

/**
 * The one place every error body passes, whoever built it (intentgate's handlers, the exchange grant,
 * oidc-provider's renderer, the admin API): `error_description` and the admin API's `field` are made
 * safe on the way out.
 */
export async function safeErrorBodies(ctx: Context, next: Next): Promise<void> {
  await next();
  const body = ctx.body as Record<string, unknown> | null | undefined;
  if (body === null || typeof body !== 'object' || Buffer.isBuffer(body) || typeof (body as { pipe?: unknown }).pipe === 'function') return;
  if (typeof body.error_description === 'string') body.error_description = safeDescription(body.error_description);
  if (typeof body.error === 'string' && typeof body.field === 'string') body.field = safeDescription(body.field);
}

/** Every error body intentgate builds: `{error, error_description}` plus any extra members. */
export function sendError(ctx: Context, status: number, error: string, description: string, extra: Record<string, unknown> = {}): void {
  ctx.status = status;
  ctx.type = 'application/json';
  ctx.set('Cache-Control', 'no-store');
  ctx.body = { error, error_description: description, ...extra };
}

export const RETRY_AFTER_UNAVAILABLE = 5;

/** Fail closed: storage is down, so nothing is decided and nothing is issued. */
export function sendUnavailable(ctx: Context): void {
  ctx.set('Retry-After', String(RETRY_AFTER_UNAVAILABLE));
  sendError(ctx, 503, 'temporarily_unavailable', 'the authorization server cannot reach its storage; retry later');
}

export const RETRY_AFTER_OVERLOADED = 1;

/** Admission control shed the request: nothing was read or decided, so it is safe to send again. */
export function sendOverloaded(ctx: Context): void {
  ctx.set('Retry-After', String(RETRY_AFTER_OVERLOADED));
  sendError(ctx, 503, 'temporarily_unavailable', 'the authorization server is overloaded; retry later');
}

export function sendRateLimited(ctx: Context, retryAfter: number): void {
  ctx.set('Retry-After', String(retryAfter));
  sendError(ctx, 429, 'slow_down', `too many requests; retry after ${retryAfter} s`);
}
