/**
 * The `baseUrl` option of koaAuth and nodeAuth: the origin (and any path prefix a proxy strips) that
 * clients address. Required, because the only alternative is the Host header, which the client sets:
 * a DPoP proof captured for another origin would then match whatever Host the replayer chose.
 */
export function baseUrlOption(value: unknown): string {
  const u = typeof value === 'string' ? URL.parse(value) : null;
  if (!u || (u.protocol !== 'https:' && u.protocol !== 'http:')) {
    throw new TypeError('baseUrl is required: the absolute http(s) URL clients use to reach this server (e.g. "https://api.example"), for the DPoP htu check');
  }
  // A query, fragment or credentials in it would end up inside every expected htu.
  if (u.search || u.hash || u.username || u.password || (value as string).includes('#') || (value as string).includes('?')) {
    throw new TypeError('baseUrl must be an origin with an optional path prefix: no query, fragment or credentials');
  }
  return u.href.replace(/\/+$/, '');
}

/**
 * The external URL of a request: `baseUrl` (from baseUrlOption) + the request target's path and query.
 * An absolute-form target (`GET http://host/path`) contributes its path only: its host is the client's too.
 */
export function externalUrl(baseUrl: string, target: string): string {
  if (target.startsWith('/')) return `${baseUrl}${target}`;
  const absolute = URL.parse(target);
  return `${baseUrl}${absolute ? `${absolute.pathname}${absolute.search}` : '/'}`;
}
