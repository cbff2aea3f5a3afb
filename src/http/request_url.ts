import type { Context } from 'koa';

/**
 * Whether this request's URL can be read: its origin (the protocol and Host, or X-Forwarded-Proto/-Host
 * behind a trusted proxy) and its path parse as a URL. Otherwise Koa makes `ctx.URL` an empty object and
 * oidc-provider's `new URL(…, ctx.href)` throws: a 500 before any authentication. Checked once, first.
 */
export function hasReadableUrl(ctx: Context): boolean {
  try {
    new URL(`${ctx.protocol}://${ctx.host}`);
  } catch {
    return false;
  }
  return typeof ctx.URL.href === 'string';
}

/** The query string's parameters, read from the raw query (never `ctx.URL`, which depends on the Host). */
export function queryParams(ctx: Context): URLSearchParams {
  return new URLSearchParams(ctx.querystring);
}
