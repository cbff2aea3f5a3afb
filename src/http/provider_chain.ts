import type { Context } from 'koa';
import compose from 'koa-compose';
import type Provider from 'oidc-provider';
import { sendBasicChallenge } from './client_auth.ts';
import { sendError, sendUnavailable } from './errors.ts';

type Chain = (ctx: Context, next: () => Promise<void>) => Promise<void>;

/**
 * Runs the current oidc-provider on a request of our Koa app (as koa-mount would): the provider sets
 * the status and body, and our middleware can still inspect or replace them before Koa responds.
 */
export function providerRunner(current: () => Provider): (ctx: Context) => Promise<void> {
  const chains = new WeakMap<Provider, Chain>();
  return async (ctx) => {
    const p = current();
    let chain = chains.get(p);
    if (!chain) {
      chain = compose(p.middleware as never) as unknown as Chain;
      chains.set(p, chain);
    }
    await chain(ctx, async () => sendError(ctx, 404, 'invalid_request', 'not found'));
    if (ctx.status === 500 && ctx.state.storageFailure) sendUnavailable(ctx);
  };
}

/** The client oidc-provider authenticated on this request, if it got that far. */
export function authenticatedClientId(ctx: Context): string | undefined {
  return (ctx as { oidc?: { client?: { clientId: string } } }).oidc?.client?.clientId;
}

/**
 * oidc-provider answers a request without any client authentication with 400 invalid_request; RFC 6749
 * §5.2 and intentgate's contract say 401 invalid_client. Only errors raised before a client was
 * authenticated and about client authentication are rewritten.
 */
export function mapMissingClientAuth(ctx: Context, realm: string): void {
  const body = ctx.body as { error?: unknown; error_description?: unknown } | undefined;
  if (authenticatedClientId(ctx) || ctx.status !== 400 || body?.error !== 'invalid_request') return;
  if (typeof body.error_description !== 'string' || !/client/i.test(body.error_description)) return;
  // Two methods at once is a malformed request, not a failed authentication (the edge refuses it first).
  if (/one mechanism/.test(body.error_description)) return;
  sendBasicChallenge(ctx, realm, body.error_description);
}
