import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Logger } from '../ops/log.ts';
import { isRejectedInput, isStorageFailure } from '../store/errors.ts';
import { ExchangeError } from './errors.ts';
import { EXCHANGE_PARAMS, REPEATABLE_PARAMS } from './parse.ts';
import { runExchange, type ExchangeAudit, type ExchangeDeps } from './pipeline.ts';
import { GRANT_TOKEN_EXCHANGE } from './token_types.ts';

export { GRANT_TOKEN_EXCHANGE, EXCHANGE_PARAMS, REPEATABLE_PARAMS };

/** Set on the request when oidc-provider defaulted `resource` itself, so the grant knows it was not sent. */
export const RESOURCE_DEFAULTED = Symbol('intentgate.resourceDefaulted');

export interface GrantDeps extends ExchangeDeps {
  log: Logger;
  /** Called once the client is authenticated: the per-client rate limit. */
  beforeExchange: (ctx: KoaContextWithOIDC, clientId: string) => void;
}

/**
 * The RFC 8693 grant as oidc-provider calls it, after client authentication and the grant_types check.
 * Its answers (success and every error) are built here: oidc-provider's serializer would drop
 * `reasons`, and the token has already been recorded when the body is set.
 */
export function tokenExchangeHandler(deps: GrantDeps) {
  return async (ctx: KoaContextWithOIDC): Promise<void> => {
    const clientId = ctx.oidc.client!.clientId;
    deps.beforeExchange(ctx, clientId);
    const raw = ctx.oidc.params as Record<string, unknown>;
    const params: Record<string, string | string[] | undefined> = {};
    for (const name of EXCHANGE_PARAMS) params[name] = raw[name] as string | string[] | undefined;
    // What the exchange learns, for the record of a refusal made after the grant answered (src/http/refusal_audit.ts).
    const audit: ExchangeAudit = {};
    ctx.state.exchangeAudit = audit;
    try {
      ctx.body = await runExchange(deps, {
        audit,
        params,
        resourceWasSent: !(ctx.state as Record<symbol, unknown>)[RESOURCE_DEFAULTED],
        clientId,
        sourceIp: ctx.ip,
        dpop: ctx.req.headers.dpop,
      });
      ctx.state.tokenRecorded = true;
    } catch (err) {
      if (err instanceof ExchangeError) {
        if (err.status === 503) {
          deps.log.warn('token exchange failed closed', { error: err.message, cause: err.cause });
          ctx.set('Retry-After', '5');
        }
        ctx.status = err.status;
        ctx.body = { error: err.code, error_description: err.message, ...err.extra };
        return;
      }
      if (isRejectedInput(err)) {
        // Input that slipped past parsing and that storage refused: the caller's fault, never an outage.
        deps.log.warn('token exchange refused by storage as malformed', { err });
        ctx.status = 400;
        ctx.body = { error: 'invalid_request', error_description: 'a value in the request was not accepted' };
        return;
      }
      if (isStorageFailure(err)) {
        deps.log.warn('token exchange failed closed: storage unavailable', { err });
        ctx.status = 503;
        ctx.body = { error: 'temporarily_unavailable', error_description: 'the authorization server cannot reach its storage; retry later' };
        return;
      }
      throw err;
    }
  };
}
