import type { Context } from 'koa';
import { BodyError } from './body.ts';
import { sendError } from './errors.ts';
import { FormError, readForm } from './form.ts';

export interface BasicCredentials { clientId: string; secret: string }

function formDecode(part: string): string | undefined {
  try {
    return decodeURIComponent(part.replaceAll('+', '%20'));
  } catch {
    return undefined;
  }
}

/**
 * HTTP Basic client credentials (RFC 6749 §2.3.1), read strictly: `Basic`, one space, canonical base64
 * of UTF-8 `id:secret`, each form-encoded, decoding to printable ASCII (what oidc-provider accepts), and
 * neither empty. Anything else is undefined: a failed client authentication, never a guess.
 */
export function parseBasic(header: string): BasicCredentials | undefined {
  const m = /^Basic ([A-Za-z0-9+/]{1,4096}={0,2})$/i.exec(header);
  if (!m) return undefined;
  const encoded = m[1]!;
  const bytes = Buffer.from(encoded, 'base64');
  const canonical = bytes.toString('base64');
  if (encoded !== canonical && encoded !== canonical.replace(/=+$/, '')) return undefined;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
  const colon = text.indexOf(':');
  if (colon < 1) return undefined;
  const clientId = formDecode(text.slice(0, colon));
  const secret = formDecode(text.slice(colon + 1));
  if (!clientId || !secret || /[^\x20-\x7E]/.test(clientId + secret)) return undefined;
  return { clientId, secret };
}

/** RFC 6749 §5.2: a client that tried HTTP Basic and failed gets 401 with a Basic challenge. */
export function sendBasicChallenge(ctx: Context, realm: string, description: string): void {
  ctx.set('WWW-Authenticate', `Basic realm="${realm}"`);
  sendError(ctx, 401, 'invalid_client', description);
}

const CLIENT_AUTH_PARAMS = new Set(['client_id', 'client_secret', 'client_assertion', 'client_assertion_type']);

export interface OAuthEdgeOptions {
  bodyLimit: number;
  /** The realm of the Basic challenge: the issuer, as oidc-provider names it. */
  realm: string;
  /** Parameters this endpoint lets repeat (RFC 8707 `resource`, RFC 8693 `audience`); no other may. */
  repeatable?: ReadonlySet<string>;
}

/**
 * intentgate's edge for the form endpoints oidc-provider serves (/token, /token/introspection,
 * /token/revocation), run before oidc-provider sees the request: a malformed Authorization header is
 * a failed client authentication (401 with a challenge); a query string is refused; the body is read strictly (src/http/form.ts);
 * two client authentication methods in one request are `invalid_request` (RFC 6749 §2.3). Returns false
 * once it has answered.
 */
export async function admitOAuthRequest(ctx: Context, { bodyLimit, realm, repeatable }: OAuthEdgeOptions): Promise<boolean> {
  // Node gives '' for a header sent empty, undefined only for one not sent.
  const authorization = ctx.req.headers.authorization;
  if (authorization !== undefined && !parseBasic(authorization)) {
    sendBasicChallenge(ctx, realm, 'the Authorization header is not valid HTTP Basic client authentication');
    return false;
  }
  // RFC 6749 §3.2 / RFC 7662 / RFC 7009: parameters go in the form body. oidc-provider ignores a query string
  // here, so a parameter there (scope, resource) would be silently dropped while a proxy may read it.
  if (ctx.querystring !== '') {
    sendError(ctx, 400, 'invalid_request', 'parameters must be sent in the form body; this endpoint takes no query string');
    return false;
  }
  let params;
  try {
    params = await readForm(ctx, bodyLimit, repeatable);
  } catch (err) {
    if (!(err instanceof FormError || err instanceof BodyError)) throw err;
    // Client credentials that cannot be read are a failed client authentication, as in the header.
    if (err instanceof FormError && err.badValueOf !== undefined && CLIENT_AUTH_PARAMS.has(err.badValueOf)) {
      sendBasicChallenge(ctx, realm, `${err.badValueOf} cannot identify a client: ${err.message}`);
      return false;
    }
    sendError(ctx, err.status, 'invalid_request', err.message);
    return false;
  }
  // RFC 6749 §5.2: an empty parameter counts as omitted, as oidc-provider treats it.
  const sent = (name: string) => (params.get(name) ?? []).some((v) => v !== '');
  const methods = [
    authorization !== undefined,
    sent('client_secret'),
    sent('client_assertion') || sent('client_assertion_type'),
    ctx.req.headers['oauth-client-attestation'] !== undefined || ctx.req.headers['oauth-client-attestation-pop'] !== undefined,
  ].filter(Boolean).length;
  if (methods > 1) {
    sendError(ctx, 400, 'invalid_request', 'use exactly one client authentication method per request');
    return false;
  }
  return true;
}
