import { decodeJwt, type JWTPayload } from 'jose';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { LedgerWriter } from '../ledger/writer.ts';
import type { Logger } from '../ops/log.ts';
import type { Metrics } from '../ops/metrics.ts';
import type { RateLimiter } from '../ops/rate_limit.ts';
import { GRANT_TOKEN_EXCHANGE } from '../exchange/token_types.ts';
import { REPEATABLE_PARAMS } from '../exchange/parse.ts';
import { boundKey } from '../../packages/resource/src/protocol/cnf.ts';
import { acceptProof, type SenderDeps } from '../exchange/dpop.ts';
import { ExchangeError } from '../exchange/errors.ts';
import { RETRY_AFTER_UNAVAILABLE, sendError, sendRateLimited, sendUnavailable } from './errors.ts';
import { mapMissingClientAuth, providerRunner } from './provider_chain.ts';
import { admitOAuthRequest } from './client_auth.ts';

const TOKEN_REPEATABLE: ReadonlySet<string> = new Set(REPEATABLE_PARAMS);

export interface TokenEndpointDeps {
  issuer: string;
  /** DPoP proofs at this endpoint: checked and recorded once, the same way for every grant. */
  dpop: SenderDeps;
  ledger: LedgerWriter;
  provider: () => Provider;
  /** Per-address limit, taken before anything else; the per-client one is taken after authentication. */
  limiter: RateLimiter;
  metrics: Metrics;
  log: Logger;
  bodyLimit: number;
}

/**
 * POST /token in front of oidc-provider: rate limits, intentgate's edge (strict form, client authentication
 * shape), then oidc-provider, then the
 * issued-token index. Koa sends the body only after this returns, so a token whose record did not
 * commit never leaves the server.
 */
export function tokenEndpoint({ issuer, dpop, ledger, provider, limiter, metrics, log, bodyLimit }: TokenEndpointDeps) {
  const runProvider = providerRunner(provider);

  return async (ctx: Context): Promise<void> => {
    const byAddress = limiter.take(`ip:${ctx.ip}`);
    if (!byAddress.ok) return sendRateLimited(ctx, byAddress.retryAfter);

    if (!(await admitOAuthRequest(ctx, { bodyLimit, realm: issuer, repeatable: TOKEN_REPEATABLE }))) {
      // Refused before any client was authenticated: counted, never recorded (unauthenticated traffic).
      const error = (ctx.body as { error?: unknown } | undefined)?.error;
      metrics.grants.inc({ grant_type: 'other', outcome: error === 'invalid_client' ? 'invalid_client' : 'invalid_request' });
      return;
    }
    await runProvider(ctx);
    mapMissingClientAuth(ctx, issuer);
    const grantType = grantLabel(ctx);

    const body = ctx.body as { access_token?: unknown; error?: unknown; error_description?: unknown } | undefined;
    // oidc-provider answers a grant the client is not registered for with invalid_request; RFC 6749 §5.2 says unauthorized_client.
    if (ctx.status === 400 && body?.error === 'invalid_request' && body.error_description === 'requested grant type is not allowed for this client') {
      body.error = 'unauthorized_client';
      body.error_description = `this client is not registered for the ${grantType} grant`;
    }
    if (ctx.status === 200 && ctx.state.tokenRecorded) {
      metrics.grants.inc({ grant_type: grantType, outcome: 'granted' });
      return;
    }
    if (ctx.status === 200 && typeof body?.access_token === 'string') {
      // oidc-provider bound this token to a DPoP proof it checked, with its own replay check (find, then
      // save: not atomic across processes) and a 300 s window. Held to intentgate's rules before it counts.
      const claims = decodeJwt(body.access_token);
      const jkt = boundKey(claims);
      if (jkt) {
        try {
          await acceptProof(dpop, String(ctx.get('dpop')), jkt);
        } catch (err) {
          if (!(err instanceof ExchangeError)) throw err;
          metrics.grants.inc({ grant_type: grantType, outcome: err.code });
          return sendError(ctx, err.status, err.code, err.message);
        }
      }
      try {
        await recordClientCredentials(ledger, claims, grantType);
      } catch (err) {
        log.error('issued token could not be recorded; not returned', { err });
        metrics.grants.inc({ grant_type: grantType, outcome: 'unavailable' });
        return sendUnavailable(ctx);
      }
      metrics.grants.inc({ grant_type: grantType, outcome: 'granted' });
      return;
    }
    if (ctx.status === 503) ctx.set('Retry-After', String(RETRY_AFTER_UNAVAILABLE));
    const error = (body as { error?: string } | undefined)?.error ?? 'unknown';
    metrics.grants.inc({ grant_type: grantType, outcome: error });
  };
}

// Metric label: the grant types intentgate knows, else `other`, so callers cannot create label values.
export function grantLabel(ctx: Context): string {
  const g = (ctx as { oidc?: { params?: { grant_type?: unknown } } }).oidc?.params?.grant_type;
  return g === 'client_credentials' || g === GRANT_TOKEN_EXCHANGE ? g : 'other';
}

/** Records a token oidc-provider minted, with its ledger entry, in one transaction. */
async function recordClientCredentials(ledger: LedgerWriter, claims: JWTPayload, grantType: string): Promise<void> {
  const audience = Array.isArray(claims.aud) ? claims.aud[0] : claims.aud;
  if (!claims.jti || !audience || !claims.exp || !claims.iat) throw new Error('minted token lacks jti, aud, exp or iat');
  const clientId = String(claims.client_id);
  await ledger.commit({
    entries: [{
      kind: 'token.issued',
      actor: clientId,
      payload: { grant_type: grantType, jti: claims.jti, client_id: clientId, audience, scope: claims.scope ?? '', expires_at: claims.exp },
    }],
    tokens: [{
      jti: claims.jti!,
      client_id: clientId,
      subject: claims.sub ?? null,
      audience,
      scope: typeof claims.scope === 'string' ? claims.scope : '',
      grant_type: grantType,
      issued_at: new Date(claims.iat! * 1000),
      expires_at: new Date(claims.exp! * 1000),
    }],
  });
}
