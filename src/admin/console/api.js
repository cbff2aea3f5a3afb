// @ts-check
// The console's only way to its data: the admin API, with the credential as a Bearer header. The
// credential lives in sessionStorage (this tab only, gone when it closes) and never in a cookie, so no
// other site can make the browser use it (no CSRF surface).

const KEY = 'intentgate.admin.credential';

export const credential = {
  get() {
    return sessionStorage.getItem(KEY);
  },
  /** @param {string} token */
  set(token) {
    sessionStorage.setItem(KEY, token);
  },
  forget() {
    sessionStorage.removeItem(KEY);
  },
};

export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {{ error?: string; error_description?: string; field?: string | null; line?: number; column?: number } | null} body
   */
  constructor(status, body) {
    super(body?.error_description ?? `the server answered ${status}`);
    this.status = status;
    this.body = body;
  }

  /** A route this server does not have (an older or newer server): the console degrades instead of failing. */
  get missingRoute() {
    return this.status === 404 && (this.body?.error_description ?? '').startsWith('no admin endpoint');
  }
}

/** Called when the server no longer accepts the credential: the console signs out. */
let onUnauthorized = () => {};
/** @param {() => void} fn */
export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

/**
 * @param {string} method
 * @param {string} path  an `/admin/api/…` or `/ledger/…` path on this origin
 * @param {unknown} [body]
 * @returns {Promise<any>}
 */
export async function api(method, path, body) {
  const res = await send(method, path, body);
  if (res.status === 204) return null;
  const data = (res.headers.get('content-type') ?? '').includes('json') ? await res.json().catch(() => null) : null;
  if (!res.ok) {
    if (res.status === 401) onUnauthorized();
    throw new ApiError(res.status, data);
  }
  return data;
}

/**
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 * @param {string} [accept]  the media type asked for
 */
export function send(method, path, body, accept = 'application/json') {
  if (!path.startsWith('/')) throw new Error('same-origin paths only');
  /** @type {Record<string, string>} */
  const headers = { accept };
  const token = credential.get();
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  return fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'omit', cache: 'no-store', redirect: 'error', referrerPolicy: 'no-referrer',
  });
}

/**
 * A query string from the non-empty values.
 * @param {Record<string, string | number | undefined | null>} params
 */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** @typedef {{ id: string; name: string; role: 'admin' | 'reviewer' | 'auditor'; user: { issuer: string; sub: string } | null }} Me */

/**
 * What a role may do, mirroring the admin API's own checks (which stay the authority).
 * @param {Me} me
 * @param {'change' | 'decide'} action
 */
export function can(me, action) {
  if (me.role === 'admin') return true;
  return action === 'decide' && me.role === 'reviewer';
}
