import type { Context } from 'koa';

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

export function sendRateLimited(ctx: Context, retryAfter: number): void {
  ctx.set('Retry-After', String(retryAfter));
  sendError(ctx, 429, 'slow_down', `too many requests; retry after ${retryAfter} s`);
}
