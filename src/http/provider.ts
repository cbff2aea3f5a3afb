import { randomBytes } from 'node:crypto';
import Provider, { errors, type KoaContextWithOIDC } from 'oidc-provider';
import type { Config } from '../config/index.ts';
import type { Keyring } from '../keys/keyring.ts';
import type { Logger } from '../ops/log.ts';
import type { RateLimiter } from '../ops/rate_limit.ts';
import { splitScope } from '../validate/common.ts';
import { ID_PATTERN } from '../validate/common.ts';
import type { RegistryCache } from '../registry/cache.ts';
import type { Db } from '../store/db.ts';
import { isStorageFailure } from '../store/errors.ts';
import { createOidcAdapter } from '../store/oidc_adapter.ts';
import { DPOP_ALGS } from '../../packages/resource/src/protocol/dpop_proof.ts';
import { clientAssertionRules, clientAuthChallenge } from './client_assertion.ts';
import { EXCHANGE_PARAMS, GRANT_TOKEN_EXCHANGE, REPEATABLE_PARAMS, RESOURCE_DEFAULTED, tokenExchangeHandler, type GrantDeps } from '../exchange/grant.ts';

export const CLIENT_AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt'];
export const CLIENT_AUTH_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

/** oidc-provider renders errors with `expose`; this one becomes 503 `temporarily_unavailable`. */
export function providerUnavailable(cause: unknown): Error {
  const err = new errors.OIDCProviderError(503, 'temporarily_unavailable', { cause });
  return Object.assign(err, { expose: true, error_description: 'the authorization server cannot reach its storage; retry later' });
}

/**
 * The per-client share of the token rate limit, taken once the client has authenticated (a claimed
 * client_id would let anyone drain another client's budget).
 */
export function takeClientBudget(limiter: RateLimiter, ctx: KoaContextWithOIDC, clientId: string): void {
  const r = limiter.take(`client:${clientId}`);
  // Charged once: recording this request's refusal (src/http/refusal_audit.ts) costs nothing more.
  ctx.state.clientBudgetTaken = r.ok;
  if (r.ok) return;
  ctx.set('Retry-After', String(r.retryAfter));
  const err = new errors.OIDCProviderError(429, 'slow_down');
  throw Object.assign(err, { expose: true, error_description: `too many requests from this client; retry after ${r.retryAfter} s` });
}

async function guardedStorage<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw isStorageFailure(err) ? providerUnavailable(err) : err;
  }
}

export interface ProviderDeps {
  config: Config;
  db: Db;
  keyring: Keyring;
  log: Logger;
  limiter: RateLimiter;
  registry: RegistryCache;
  exchange: Omit<GrantDeps, 'beforeExchange' | 'log'>;
}

/**
 * oidc-provider does the OAuth machinery we do not need to own: client authentication (all methods),
 * the token endpoint's parameter handling, and the client_credentials grant. Its keystore is fixed at
 * construction, so this is called again whenever the set of signing keys changes.
 */
// No registered client can have another shape; anything else (NUL, oversized) is simply unknown.
const clientIdPattern = new RegExp(ID_PATTERN);

export function buildProvider({ config, db, keyring, log, limiter, registry, exchange }: ProviderDeps): Provider {
  const checkAssertion = clientAssertionRules({
    db, issuer: config.issuer, tokenEndpoint: `${config.issuer}/token`, clockSkew: config.exchange.clockSkew, maxLifetime: config.exchange.clientAssertionMaxLifetime,
  });
  const provider = new Provider(config.issuer, {
    adapter: createOidcAdapter(db, async (id) => (clientIdPattern.test(id) ? registry.providerClient(id) : undefined)),
    jwks: { keys: keyring.signingCandidates().map((k) => k.privateJwk) } as never,
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    clientAuthMethods: CLIENT_AUTH_METHODS as never,
    // The one clock skew (src/jwt/time.ts); client assertions are then held to clientAssertionRules.
    clockTolerance: config.exchange.clockSkew,
    assertJwtClientAuthClaimsAndHeader: (_ctx, claims) => guardedStorage(() => checkAssertion(claims)),
    enabledJWA: { clientAuthSigningAlgValues: CLIENT_AUTH_ALGS as never, dPoPSigningAlgValues: [...DPOP_ALGS] as never },
    clientDefaults: {
      grant_types: ['client_credentials'],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: keyring.active().alg,
    },
    ttl: {
      ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? config.accessTokenTtl,
    },
    responseTypes: ['none'],
    scopes: [],
    claims: {},
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      // Enabled for their client authentication; intentgate answers for its JWTs (src/http/introspection.ts).
      introspection: { enabled: true },
      revocation: { enabled: true },
      userinfo: { enabled: false },
      resourceIndicators: {
        enabled: true,
        // A client_credentials token must name its audience: an unbound token is what intentgate exists to end.
        // oidc-provider also asks here whenever authorization_details come without `resource`; token exchange
        // resolves its own target (often an `audience`), so it gets a placeholder it knows to ignore.
        defaultResource: (ctx: KoaContextWithOIDC) => {
          if (ctx.oidc.params?.grant_type === GRANT_TOKEN_EXCHANGE) {
            (ctx.state as Record<symbol, unknown>)[RESOURCE_DEFAULTED] = true;
            return 'urn:intentgate:unset';
          }
          throw new errors.InvalidTarget('the resource parameter is required');
        },
        useGrantedResource: () => false,
        // Runs once per client_credentials request, after client authentication.
        getResourceServerInfo: async (ctx: KoaContextWithOIDC, indicator: string, client) => {
          takeClientBudget(limiter, ctx, client.clientId);
          const resource = registry.resource(indicator);
          if (!resource) throw new errors.InvalidTarget(`resource ${indicator} is not registered`);
          const clientScopes = new Set(splitScope(registry.client(client.clientId)?.scope));
          const allowed = resource.scopes.map((s) => s.name).filter((s) => clientScopes.has(s));
          const requested = splitScope(ctx.oidc.params?.scope as string | undefined);
          const refused = requested.filter((s) => !allowed.includes(s));
          if (refused.length > 0) {
            const known = new Set(resource.scopes.map((s) => s.name));
            const why = refused.map((s) => `${s}: ${known.has(s) ? `client ${client.clientId} may not be granted it` : `${indicator} has no such scope`}`);
            throw new errors.InvalidScope(`scope beyond what may be granted (${why.join('; ')})`, refused.join(' '));
          }
          const active = keyring.active();
          return {
            audience: resource.identifier,
            scope: allowed.join(' '),
            accessTokenTTL: Math.min(resource.access_token_ttl ?? config.accessTokenTtl, config.accessTokenTtl),
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: active.alg, kid: active.kid } },
          };
        },
      },
    },
    renderError: async (ctx, out) => {
      ctx.type = 'application/json';
      ctx.body = out;
    },
  });
  provider.registerGrantType(
    GRANT_TOKEN_EXCHANGE,
    tokenExchangeHandler({ ...exchange, log, beforeExchange: (ctx, clientId) => takeClientBudget(limiter, ctx, clientId) }) as never,
    EXCHANGE_PARAMS,
    REPEATABLE_PARAMS,
  );
  provider.use(clientAuthChallenge(config.issuer));
  provider.proxy = config.trustProxy;
  provider.on('server_error', (ctx, err) => {
    // A storage failure anywhere inside oidc-provider (an adapter call it makes on its own) is an outage, not
    // a bug: marked here, answered 503 with Retry-After by providerRunner.
    if (isStorageFailure(err)) {
      ctx.state.storageFailure = true;
      log.warn('oauth storage failure; answered 503', { err });
      return;
    }
    log.error('oauth server error', { err });
  });
  provider.on('grant.error', (_ctx, err) => log.debug('grant refused', { error: (err as { error?: string }).error, detail: (err as { error_detail?: string }).error_detail }));
  return provider;
}
