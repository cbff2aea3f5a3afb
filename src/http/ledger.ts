import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { LedgerKey } from '../ledger/key.ts';
import { recordResourceEvent } from '../ledger/events.ts';
import { issuedToken } from '../tokens/issued.ts';
import { checkpointConsistency, entryProof, latestCheckpoint } from '../ledger/proof.ts';
import type { LedgerWriter } from '../ledger/writer.ts';
import { authenticateAdmin } from '../registry/admins.ts';
import { ValidationError } from '../validate/schema.ts';
import type { Db } from '../store/db.ts';
import type { RegistryCache } from '../registry/cache.ts';
import { BodyError, readJsonObject } from './body.ts';
import { basicClient } from './client_basic.ts';
import { sendBasicChallenge } from './client_auth.ts';
import { sendError, sendRateLimited } from './errors.ts';
import type { RateLimiter } from '../ops/rate_limit.ts';
import { entryBySeq, type LedgerEntry } from '../ledger/query.ts';
import type { AuthFailureReason } from '../ledger/auth_failures.ts';
import { queryParams } from './request_url.ts';

export interface LedgerHttpDeps {
  /** Per-address limit: proofs cost work proportional to the ledger's size. */
  limiter: RateLimiter;
  db: Db;
  registry: RegistryCache;
  ledger: LedgerWriter;
  key: LedgerKey;
  provider: () => Provider;
  bodyLimit: number;
  /** A failed resource-server authentication: counted (metrics, and the bounded ledger record). */
  authFailed: (reason: AuthFailureReason) => void;
}

async function resourceServerOf(registry: RegistryCache, provider: Provider, ctx: Context): Promise<string | null | undefined> {
  const clientId = await basicClient(provider, ctx);
  if (!clientId) return undefined;
  return registry.client(clientId)?.resource_server ?? null;
}

/** Personal values (intent, decision context with user claims) are for admins, not resource servers. */
function withoutPersonal(entry: LedgerEntry): void {
  for (const k of Object.keys(entry.payload)) {
    if (k.endsWith('_sha256')) delete entry.payload[k.slice(0, -'_sha256'.length)];
  }
}

function unauthorized(ctx: Context, realm: string): void {
  sendBasicChallenge(ctx, realm, 'authenticate as a registered resource server (HTTP Basic)');
}

/** The ledger's public face: the latest signed checkpoint, entry proofs, and resource-server events. */
export function ledgerEndpoints({ limiter, db, registry, ledger, key, provider, bodyLimit, authFailed }: LedgerHttpDeps) {
  // The claimed client is not resolved here: every failure goes to the unregistered bucket.
  const refuse = (ctx: Context): void => {
    const header = ctx.get('authorization');
    authFailed(header === '' ? 'missing' : /^basic /i.test(header) ? 'invalid_credentials' : 'malformed');
    unauthorized(ctx, 'intentgate-ledger');
  };
  const limited = (ctx: Context): boolean => {
    const r = limiter.take(`ledger-ip:${ctx.ip}`);
    if (!r.ok) sendRateLimited(ctx, r.retryAfter);
    return !r.ok;
  };
  return {
    async checkpoint(ctx: Context): Promise<void> {
      if (limited(ctx)) return;
      const latest = await latestCheckpoint(db);
      if (!latest) return sendError(ctx, 404, 'not_found', 'no checkpoint has been made yet');
      const from = queryParams(ctx).get('from');
      let consistency: string[] | undefined;
      if (from !== null) {
        if (!/^\d{1,15}$/.test(from)) return sendError(ctx, 400, 'invalid_request', 'from must be the tree_size of an earlier checkpoint');
        consistency = await checkpointConsistency(db, Number(from), latest);
        if (!consistency) return sendError(ctx, 404, 'not_found', `no checkpoint with tree_size ${from}`);
      }
      ctx.set('Cache-Control', 'no-cache');
      ctx.body = { ...latest, public_key: key.publicJwk, ...(consistency ? { from_tree_size: Number(from), consistency_proof: consistency } : {}) };
    },

    /** GET /ledger/entries/{seq}/proof: an admin, or the resource server whose token the entry concerns. */
    async proof(ctx: Context, seqParam: string): Promise<void> {
      if (limited(ctx)) return;
      if (!/^\d{1,15}$/.test(seqParam) || Number(seqParam) < 1) return sendError(ctx, 400, 'invalid_request', 'seq must be a positive integer');
      const bearer = /^Bearer ([\x21-\x7E]{1,512})$/i.exec(ctx.get('authorization'));
      const admin = bearer ? await authenticateAdmin(db, bearer[1]!) : undefined;
      let resourceServer: string | null | undefined;
      if (!admin) {
        resourceServer = await resourceServerOf(registry, provider(), ctx);
        if (resourceServer === undefined) return refuse(ctx);
      }
      // Authorised on the entry alone, before the proof's work (proportional to the ledger) is done.
      const entry = await entryBySeq(db, Number(seqParam));
      const concerns = entry && entry.kind !== 'exchange.denied' && (entry.payload.audience === resourceServer
        || (entry.kind === 'resource.event' && entry.actor === resourceServer));
      if (!entry || (!admin && !concerns)) return sendError(ctx, 404, 'not_found', 'no such entry, or not one about your tokens');
      const proof = await entryProof(db, entry);
      if (!admin) withoutPersonal(proof.entry);
      ctx.set('Cache-Control', 'no-store');
      ctx.body = proof;
    },

    /** POST /ledger/events: what a call made with one of this resource server's tokens did. */
    async event(ctx: Context): Promise<void> {
      if (limited(ctx)) return;
      const resourceServer = await resourceServerOf(registry, provider(), ctx);
      if (resourceServer === undefined) return refuse(ctx);
      if (resourceServer === null) return sendError(ctx, 403, 'access_denied', 'this client is not registered as a resource server');
      try {
        const result = await recordResourceEvent(db, (jti) => issuedToken(db, jti), ledger, resourceServer, await readJsonObject(ctx, bodyLimit));
        if (result.status === 201) {
          ctx.status = 201;
          ctx.body = { seq: result.seq };
        } else {
          sendError(ctx, result.status, result.status === 403 ? 'access_denied' : 'not_found', result.message);
        }
      } catch (err) {
        if (err instanceof ValidationError) return sendError(ctx, 400, 'invalid_request', err.message, { field: err.field ?? null });
        if (err instanceof BodyError) return sendError(ctx, err.status, 'invalid_request', err.message);
        throw err;
      }
    },
  };
}
