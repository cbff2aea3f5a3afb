import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { Keyring } from '../keys/keyring.ts';
import type { Logger } from '../ops/log.ts';
import type { RateLimiter } from '../ops/rate_limit.ts';
import type { Db } from '../store/db.ts';
import type { RegistryCache } from '../registry/cache.ts';
import { isStorageFailure } from '../store/errors.ts';
import { introspect, revoke } from '../tokens/introspect.ts';
import { sendRateLimited, sendUnavailable } from './errors.ts';
import { admitOAuthRequest } from './client_auth.ts';
import { authenticatedClientId, mapMissingClientAuth, providerRunner } from './provider_chain.ts';

export interface IntrospectionDeps {
  db: Db;
  registry: RegistryCache;
  keyring: Keyring;
  issuer: string;
  provider: () => Provider;
  limiter: RateLimiter;
  log: Logger;
  bodyLimit: number;
}

/**
 * POST /token/introspection and /token/revocation. oidc-provider authenticates the client (every
 * method it supports) and then refuses JWTs with `unsupported_token_type`, since it does not store
 * them; at that point the client is known, and intentgate answers from its own issued-token index.
 */
export function tokenStatusEndpoints({ db, registry, keyring, issuer, provider, limiter, log, bodyLimit }: IntrospectionDeps) {
  const runProvider = providerRunner(provider);
  const handle = (kind: 'introspection' | 'revocation') => async (ctx: Context): Promise<void> => {
    const byAddress = limiter.take(`ip:${ctx.ip}`);
    if (!byAddress.ok) return sendRateLimited(ctx, byAddress.retryAfter);
    if (!(await admitOAuthRequest(ctx, { bodyLimit, realm: issuer }))) return;
    await runProvider(ctx);
    const clientId = authenticatedClientId(ctx);
    const body = ctx.body as { error?: string } | undefined;
    if (ctx.status === 503) ctx.set('Retry-After', '5');
    mapMissingClientAuth(ctx, issuer);
    if (!clientId || ctx.status !== 400 || body?.error !== 'unsupported_token_type') return;
    const byClient = limiter.take(`client:${clientId}`);
    if (!byClient.ok) return sendRateLimited(ctx, byClient.retryAfter);
    const token = String((ctx as unknown as { oidc: { params: { token: string } } }).oidc.params.token);
    try {
      if (kind === 'introspection') {
        ctx.body = await introspect(db, keyring, issuer, registry.client(clientId)?.resource_server ?? null, token);
      } else {
        await revoke(db, keyring, issuer, clientId, token);
        ctx.body = '';
      }
      ctx.status = 200;
      ctx.set('Cache-Control', 'no-store');
    } catch (err) {
      if (!isStorageFailure(err)) throw err;
      log.warn(`${kind} failed: storage unavailable`, { err });
      sendUnavailable(ctx);
    }
  };
  return { introspection: handle('introspection'), revocation: handle('revocation') };
}
