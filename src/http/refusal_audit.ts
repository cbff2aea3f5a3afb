import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { ExchangeAudit } from '../exchange/pipeline.ts';
import type { AuthFailureEndpoint, AuthFailureLedger, AuthFailureReason } from '../ledger/auth_failures.ts';
import { isRefusal, presentedToken, recordRefusal, type Refusal } from '../ledger/refusals.ts';
import type { LedgerWriter } from '../ledger/writer.ts';
import type { Logger } from '../ops/log.ts';
import type { Metrics } from '../ops/metrics.ts';
import type { RateLimiter } from '../ops/rate_limit.ts';
import { checkBasic } from './client_basic.ts';
import { sendRateLimited, sendUnavailable } from './errors.ts';
import { grantLabel } from './token.ts';

export interface RefusalAuditDeps {
  ledger: LedgerWriter;
  authFailures: AuthFailureLedger;
  metrics: Metrics;
  /** The endpoint's limiter: a refusal is recorded only within the client's budget. */
  limiter: RateLimiter;
  log: Logger;
  /** Checks HTTP Basic credentials of a request the edge refused before oidc-provider ran. */
  provider: () => Provider;
}

interface OidcState {
  client?: { clientId: string };
  params?: Record<string, unknown>;
}

const oidcOf = (ctx: Context): OidcState | undefined => (ctx as { oidc?: OidcState }).oidc;

/** A failed client authentication and the counter it goes to (metrics and the bounded ledger record). */
export function noteAuthFailure(deps: Pick<RefusalAuditDeps, 'authFailures' | 'metrics'>, endpoint: AuthFailureEndpoint, reason: AuthFailureReason, registeredClientId?: string): void {
  deps.metrics.clientAuthFailures.inc({ endpoint, reason });
  deps.authFailures.add(endpoint, reason, registeredClientId);
}

/**
 * An `invalid_client` answer (401; oidc-provider's expired-secret one is 400), classified. oidc-provider
 * names its client once it has found it in the registry, before checking the credentials: a failure with
 * a client is a registered client_id with the wrong secret or assertion; its generic description without
 * one is a client_id it did not find.
 */
function failedClientAuth(ctx: Context): { reason: AuthFailureReason; clientId?: string } | undefined {
  const body = ctx.body as { error?: unknown; error_description?: unknown } | undefined;
  if (body?.error !== 'invalid_client' || (ctx.status !== 401 && ctx.status !== 400)) return undefined;
  const clientId = oidcOf(ctx)?.client?.clientId;
  if (clientId) return { reason: 'invalid_credentials', clientId };
  const description = typeof body.error_description === 'string' ? body.error_description : '';
  if (/no client authentication/i.test(description)) return { reason: 'missing' };
  if (description === 'client authentication failed') return { reason: 'unknown_client' };
  return { reason: 'malformed' };
}

/**
 * The client whose credentials oidc-provider accepted, or undefined. It names its client before checking
 * the credentials, so a failure (401) has one too; and with client-attestation headers (a method
 * intentgate does not enable) it can refuse with invalid_request after naming one, unauthenticated.
 */
function authenticatedClient(ctx: Context): string | undefined {
  const clientId = oidcOf(ctx)?.client?.clientId;
  if (!clientId || ctx.status === 401 || (ctx.body as { error?: unknown } | undefined)?.error === 'invalid_client') return undefined;
  // Present at all, even empty, is what oidc-provider tests.
  const headers = ctx.req.headers;
  if (headers['oauth-client-attestation'] !== undefined || headers['oauth-client-attestation-pop'] !== undefined) return undefined;
  return clientId;
}

/**
 * Runs an OAuth endpoint (oidc-provider behind it), then audits its answer before Koa sends it:
 * a failed client authentication is counted (metric, and the bounded ledger record: auth_failures.ts);
 * a refusal of an authenticated client's request (isRefusal) is recorded as `token.refused` with the
 * client, the error and its description, unless the exchange already recorded it as a decision. Each
 * recorded refusal costs the client one request of its rate budget (once per request), so neither an
 * unauthenticated caller nor a client can grow the ledger faster than its budget. Fail closed: a refusal
 * that cannot be recorded is answered 503, never with the refusal it could not record.
 */
export function auditRefusals(endpoint: Refusal['endpoint'], handler: (ctx: Context) => Promise<void>, deps: RefusalAuditDeps) {
  return async (ctx: Context): Promise<void> => {
    await handler(ctx);
    const failure = failedClientAuth(ctx);
    if (failure) return noteAuthFailure(deps, endpoint, failure.reason, failure.clientId);

    const body = ctx.body as { error?: unknown; error_description?: unknown } | undefined;
    if (!isRefusal(ctx.status, body?.error)) return;
    // Refused at the edge (src/http/client_auth.ts) before oidc-provider authenticated anyone: a request
    // whose HTTP Basic credentials hold is still an authenticated client's refusal, and recorded as such;
    // wrong ones are a failed client authentication. Credentials in an unreadable body cannot be checked.
    const atEdge = oidcOf(ctx) === undefined;
    const clientId = atEdge ? await edgeClient(ctx, endpoint, deps) : authenticatedClient(ctx);
    if (!clientId) return;
    const audit = ctx.state.exchangeAudit as ExchangeAudit | undefined;
    if (audit?.decisionRecorded) return;
    if (!ctx.state.clientBudgetTaken) {
      const budget = deps.limiter.take(`client:${clientId}`);
      if (!budget.ok) return sendRateLimited(ctx, budget.retryAfter);
    }
    const params = oidcOf(ctx)?.params ?? {};
    const refusal: Refusal = {
      endpoint,
      client_id: clientId,
      ...(endpoint === 'token' ? { grant_type: grantLabel(ctx) } : {}),
      error: body!.error as string,
      error_description: typeof body!.error_description === 'string' ? body!.error_description : '',
      ...(audit?.user ? { user: audit.user } : {}),
      ...(audit?.target ? { target: audit.target } : {}),
      ...(audit?.intent ? { intent: audit.intent } : {}),
      subject_token: presentedToken(params.subject_token),
      actor_token: presentedToken(params.actor_token),
    };
    try {
      await recordRefusal(deps.ledger, refusal);
    } catch (err) {
      deps.log.warn('a refusal could not be recorded; answered as unavailable', { err });
      sendUnavailable(ctx);
    }
  };
}

async function edgeClient(ctx: Context, endpoint: Refusal['endpoint'], deps: RefusalAuditDeps): Promise<string | undefined> {
  let outcome;
  try {
    outcome = await checkBasic(deps.provider(), ctx);
  } catch {
    // The registry could not be read: the refusal stands; it is only not attributed to a client.
    return undefined;
  }
  if ('clientId' in outcome) return outcome.clientId;
  // Without Basic credentials there is nothing to check: body credentials were in the form the edge could not read.
  if (outcome.failure === 'missing' || outcome.failure === 'malformed') return undefined;
  noteAuthFailure(deps, endpoint, outcome.failure, outcome.registeredClientId);
  return undefined;
}
