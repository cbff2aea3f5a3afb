import { existsSync } from 'node:fs';
import { PassThrough, Readable } from 'node:stream';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context } from 'koa';
import type { Kek } from '../crypto/kek.ts';
import type { Config } from '../config/index.ts';
import type { Keyring } from '../keys/keyring.ts';
import { overlapTooShort, rotateSigningKey } from '../keys/rotate.ts';
import { ADMIN_ROLES, authenticateAdmin, createAdmin, listAdmins, personsInChain, revokeAdmin, updateAdmin, type AdminIdentity, type AdminRole } from '../registry/admins.ts';
import { createClient, deleteClient, getClient, listClients, rotateClientSecret, updateClient } from '../registry/clients.ts';
import { createIssuer, deleteIssuer, getIssuer, listIssuers, updateIssuer } from '../registry/issuers.ts';
import { pageParams } from '../registry/pagination.ts';
import { createResource, deleteResource, getResource, listResources, updateResource } from '../registry/resources.ts';
import { check, compileSchema, ValidationError } from '../validate/schema.ts';
import type { Logger } from '../ops/log.ts';
import { simulate } from '../policy/simulate.ts';
import type { ContextBuilder } from '../policy/request.ts';
import { decideReview, listReviews, type Reviewer } from '../review/reviews.ts';
import { revokeCascade, type RevocationTarget } from '../tokens/revoke.ts';
import { reviewDecided } from '../tasks/behaviour.ts';
import { iso } from '../validate/common.ts';
import { parseSince, replayFromBody } from '../policy/replay.ts';
import { exportLedger } from '../ledger/export.ts';
import { openApiDocument } from './openapi.ts';
import { changeTask, listTasks, taskView, type TaskChange } from '../tasks/tasks.ts';
import type { Checkpointer } from '../ledger/checkpoint.ts';
import { decisionsPerHour, ledgerQueryParams, queryLedger } from '../ledger/query.ts';
import { latestCheckpoint } from '../ledger/proof.ts';
import { ledgerSize, publicKeyFrom, verifyLedger } from '../ledger/verify.ts';
import { locateField } from '../policy/locate.ts';
import { parsePolicyDocument } from '../policy/document.ts';
import type { PolicyStore } from '../policy/store.ts';
import type { RegistryCache } from '../registry/cache.ts';
import type { RegistryTable } from '../registry/changes.ts';
import type { RateLimiter } from '../ops/rate_limit.ts';
import type { Db } from '../store/db.ts';
import { isRejectedInput, isStorageFailure } from '../store/errors.ts';
import { BodyError, readJsonObject, readOptionalJsonObject } from '../http/body.ts';
import { sendError, sendRateLimited, sendUnavailable } from '../http/errors.ts';
import { Router } from '../http/router.ts';
import { queryParams } from '../http/request_url.ts';

export interface AdminDeps {
  config: Config;
  policies: PolicyStore;
  checkpointer: Checkpointer;
  db: Db;
  kek: Kek;
  keyring: Keyring;
  limiter: RateLimiter;
  log: Logger;
  /** Reloaded after a registry change here, so this process need not wait for its own NOTIFY. */
  registry: RegistryCache;
  /** Called after this process rotated the keys, so it need not wait for its own NOTIFY. */
  onKeysChanged: () => Promise<void>;
  /** The exchange's decision-context builder, so a simulation decides exactly as the exchange does. */
  buildContext: ContextBuilder;
  /** A bearer for the local CLI while this process alone holds the embedded database (never stored). */
  localAdminToken?: string;
}

/** The identity the local CLI's credential acts as; changes it makes are recorded as by `cli`. */
const LOCAL_CLI: AdminIdentity = { id: 'cli', name: 'cli', role: 'admin', user: null };

function sameSecret(a: string, b: string): boolean {
  const x = createHash('sha256').update(a).digest();
  const y = createHash('sha256').update(b).digest();
  return timingSafeEqual(x, y);
}

const validateRotate = compileSchema({
  type: 'object',
  additionalProperties: false,
  properties: { overlap_seconds: { type: 'integer', minimum: 0, maximum: 7 * 86_400 } },
});

function notFound(ctx: Context, what: string, field: string): void {
  sendError(ctx, 404, 'not_found', `no ${what} with that ${field}`, { field });
}

function created(ctx: Context, body: unknown): void {
  ctx.status = 201;
  ctx.body = body;
}

function stringFilter(q: URLSearchParams, name: string): string | undefined {
  const v = q.get(name);
  if (v === null) return undefined;
  if (v.length > 2000) throw new ValidationError(`${name} is too long`, name);
  if (v.includes('\0')) throw new ValidationError(`${name} must not contain NUL`, name);
  return v;
}

/** `/admin/api/*`: bearer-authenticated JSON REST over the registry, admins and keys. */
type RevocationBody = { jti?: string; task?: string; client_id?: string; user?: { issuer: string; sub: string }; reason?: string };
const validateRevocation = compileSchema({
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    jti: { type: 'string', minLength: 1, maxLength: 128 },
    task: { type: 'string', minLength: 1, maxLength: 128 },
    client_id: { type: 'string', minLength: 1, maxLength: 128 },
    user: {
      type: 'object', additionalProperties: false, required: ['issuer', 'sub'],
      properties: { issuer: { type: 'string', minLength: 1, maxLength: 2000 }, sub: { type: 'string', minLength: 1, maxLength: 1000 } },
    },
    reason: { type: 'string', maxLength: 500, format: 'visible-text' },
  },
});

const validateReviewDecision = compileSchema({
  type: 'object',
  additionalProperties: false,
  properties: { comment: { type: 'string', maxLength: 2000, format: 'visible-text' } },
});

const validateVerify = compileSchema({
  type: 'object',
  additionalProperties: false,
  properties: { public_key: { type: 'string', minLength: 1, maxLength: 10_000 } },
});

/** The checkpoint key to verify with: the server's own, or one the caller holds (a JWK or SPKI PEM). */
async function verifierKey(text: string) {
  try {
    return await publicKeyFrom(text);
  } catch {
    throw new ValidationError('public_key must be an Ed25519 public key as a JWK or SPKI PEM', 'public_key');
  }
}

const validateTaskReason = compileSchema({
  type: 'object',
  additionalProperties: false,
  properties: { reason: { type: 'string', minLength: 1, maxLength: 500, format: 'visible-text' } },
});
const validateResume = compileSchema({ type: 'object', additionalProperties: false, properties: {} });

const validatePublish = compileSchema({
  type: 'object',
  additionalProperties: false,
  required: ['document'],
  properties: { document: { type: 'string', minLength: 1, maxLength: 262_144 }, source: { type: 'string', maxLength: 200, format: 'visible-text' } },
});

const validateDraft = compileSchema({
  type: 'object',
  additionalProperties: false,
  required: ['document'],
  properties: { document: { type: 'string', minLength: 1, maxLength: 262_144 } },
});


type Handler = Parameters<Router['add']>[2];
// Who may call what. Reads (and simulate/replay, which write nothing) are for every role; the review
// queue's decisions for admins and reviewers; every change for admins only.
const EVERYONE: readonly AdminRole[] = ADMIN_ROLES;
const REVIEWERS: readonly AdminRole[] = ['admin', 'reviewer'];
const ADMINS: readonly AdminRole[] = ['admin'];

/** A policy document's validation error, with the line and column it points at (for the console's editor). */
function policyError(err: ValidationError, document: string): ValidationError & { line?: number; column?: number } {
  const field = err.field?.replace(/^document\.?/, '') || undefined;
  const at = locateField(document, field);
  return Object.assign(new ValidationError(err.message.startsWith('document') ? err.message : `document: ${err.message}`, `document${field ? `.${field}` : ''}`), at ?? {});
}

export function adminApi({ config, db, kek, keyring, limiter, log, onKeysChanged, policies, checkpointer, registry, localAdminToken, buildContext }: AdminDeps) {
  const router = new Router();
  // Every route names the roles it admits, so none can be added without deciding who may call it.
  const routes = {
    add(method: string, path: string, roles: readonly AdminRole[], handler: Handler) {
      // A change to a cached registry table is in force in this process before the answer goes out.
      const changes = method === 'GET' ? undefined : (['clients', 'resources', 'issuers'] as const).find((t) => path.startsWith(`/admin/api/${t}`));
      router.add(method, path, async (ctx, params) => {
        const { role } = ctx.state.admin as AdminIdentity;
        if (!roles.includes(role)) {
          throw new ValidationError(`a credential with role ${role} may not call ${method} ${path}; that takes ${roles.join(' or ')}`, undefined, 403, 'access_denied');
        }
        try {
          await handler(ctx, params);
        } finally {
          if (changes) await reloadRegistry(changes);
        }
      });
      return routes;
    },
  };
  const reloadRegistry = (table: RegistryTable) => registry.reload(table)
    .catch((err) => log.warn('registry reload after a change failed; the periodic reload will retry', { table, err }));
  const body = (ctx: Context) => readJsonObject(ctx, config.bodyLimit);
  // Endpoints whose members are all optional take no body as `{}`.
  const optionalBody = (ctx: Context) => readOptionalJsonObject(ctx, config.bodyLimit);
  const who = (ctx: Context) => (ctx.state.admin as AdminIdentity).id;
  // Suspend, resume, revoke: the body may be empty (or `{}`), `{reason}` where a reason fits.
  const changeTaskRoute = async (ctx: Context, task: string, change: TaskChange) => {
    const input = await optionalBody(ctx);
    const { reason } = check<{ reason?: string }>(change === 'resume' ? validateResume : validateTaskReason, input);
    if (task.length > 128) return notFound(ctx, 'task', 'task');
    if (!(await changeTask(db, task, change, who(ctx), reason))) return notFound(ctx, 'task', 'task');
    ctx.body = await taskView(db, task);
  };
  const reviewer = async (ctx: Context): Promise<Reviewer> => {
    const a = ctx.state.admin as AdminIdentity;
    return { id: a.id, user: a.user, chain: a.user ? await personsInChain(db, a.id) : [] };
  };

  let verifying = false;
  routes
    // Who the credential is: the console shows what its role allows, and marks its person's own requests.
    .add('GET', '/admin/api/whoami', EVERYONE, (ctx) => {
      const { id, name, role, user } = ctx.state.admin as AdminIdentity;
      ctx.body = { id, name, role, user };
    })
    .add('GET', '/admin/api/admins', EVERYONE, async (ctx) => { ctx.body = await listAdmins(db, pageParams(queryParams(ctx))); })
    .add('POST', '/admin/api/admins', ADMINS, async (ctx) => created(ctx, await createAdmin(db, await body(ctx), who(ctx))))
    .add('PATCH', '/admin/api/admins/:id', ADMINS, async (ctx, [id]) => {
      const a = await updateAdmin(db, id!, await body(ctx), who(ctx));
      if (a) ctx.body = a;
      else notFound(ctx, 'admin', 'id');
    })
    .add('DELETE', '/admin/api/admins/:id', ADMINS, async (ctx, [id]) => {
      if (await revokeAdmin(db, id!, who(ctx))) ctx.status = 204;
      else notFound(ctx, 'admin', 'id');
    })

    .add('GET', '/admin/api/clients', EVERYONE, async (ctx) => {
      const q = queryParams(ctx);
      ctx.body = await listClients(db, pageParams(q), { grant_type: stringFilter(q, 'grant_type'), resource_server: stringFilter(q, 'resource_server') });
    })
    .add('POST', '/admin/api/clients', ADMINS, async (ctx) => created(ctx, await createClient(db, kek, await body(ctx), who(ctx))))
    .add('GET', '/admin/api/clients/:id', EVERYONE, async (ctx, [id]) => {
      const c = await getClient(db, id!);
      if (c) ctx.body = c;
      else notFound(ctx, 'client', 'client_id');
    })
    .add('PATCH', '/admin/api/clients/:id', ADMINS, async (ctx, [id]) => {
      const c = await updateClient(db, kek, id!, await body(ctx), who(ctx));
      if (c) ctx.body = c;
      else notFound(ctx, 'client', 'client_id');
    })
    .add('DELETE', '/admin/api/clients/:id', ADMINS, async (ctx, [id]) => {
      if (await deleteClient(db, id!, who(ctx))) ctx.status = 204;
      else notFound(ctx, 'client', 'client_id');
    })
    .add('POST', '/admin/api/clients/:id/secret', ADMINS, async (ctx, [id]) => {
      const c = await rotateClientSecret(db, kek, id!, who(ctx));
      if (c) ctx.body = c;
      else notFound(ctx, 'client', 'client_id');
    })

    .add('GET', '/admin/api/resources', EVERYONE, async (ctx) => { ctx.body = await listResources(db, pageParams(queryParams(ctx))); })
    .add('POST', '/admin/api/resources', ADMINS, async (ctx) => created(ctx, await createResource(db, await body(ctx), who(ctx))))
    .add('GET', '/admin/api/resources/:id', EVERYONE, async (ctx, [id]) => {
      const r = await getResource(db, id!);
      if (r) ctx.body = r;
      else notFound(ctx, 'resource', 'identifier');
    })
    .add('PATCH', '/admin/api/resources/:id', ADMINS, async (ctx, [id]) => {
      const r = await updateResource(db, id!, await body(ctx), who(ctx));
      if (r) ctx.body = r;
      else notFound(ctx, 'resource', 'identifier');
    })
    .add('DELETE', '/admin/api/resources/:id', ADMINS, async (ctx, [id]) => {
      if (await deleteResource(db, id!, who(ctx))) ctx.status = 204;
      else notFound(ctx, 'resource', 'identifier');
    })

    .add('GET', '/admin/api/issuers', EVERYONE, async (ctx) => { ctx.body = await listIssuers(db, pageParams(queryParams(ctx))); })
    .add('POST', '/admin/api/issuers', ADMINS, async (ctx) => created(ctx, await createIssuer(db, await body(ctx), who(ctx))))
    .add('GET', '/admin/api/issuers/:id', EVERYONE, async (ctx, [id]) => {
      const i = await getIssuer(db, id!);
      if (i) ctx.body = i;
      else notFound(ctx, 'issuer', 'issuer');
    })
    .add('PATCH', '/admin/api/issuers/:id', ADMINS, async (ctx, [id]) => {
      const i = await updateIssuer(db, id!, await body(ctx), who(ctx));
      if (i) ctx.body = i;
      else notFound(ctx, 'issuer', 'issuer');
    })
    .add('DELETE', '/admin/api/issuers/:id', ADMINS, async (ctx, [id]) => {
      if (await deleteIssuer(db, id!, who(ctx))) ctx.status = 204;
      else notFound(ctx, 'issuer', 'issuer');
    })

    .add('GET', '/admin/api/policies', EVERYONE, async (ctx) => { ctx.body = { items: await policies.list(), next_cursor: null }; })
    .add('POST', '/admin/api/policies', ADMINS, async (ctx) => {
      const input = check<{ document: string; source?: string }>(validatePublish, await body(ctx));
      try {
        created(ctx, await policies.publish(input.document, input.source ?? 'admin api', who(ctx)));
      } catch (err) {
        if (err instanceof ValidationError) throw policyError(err, input.document);
        throw err;
      }
    })
    // A draft checked without publishing it: the console's editor shows the first problem at its line.
    .add('POST', '/admin/api/policies/validate', EVERYONE, async (ctx) => {
      const input = check<{ document: string }>(validateDraft, await body(ctx));
      try {
        parsePolicyDocument(input.document);
        ctx.body = { valid: true };
      } catch (err) {
        if (!(err instanceof ValidationError)) throw err;
        const e = policyError(err, input.document);
        ctx.body = { valid: false, error: { message: e.message, field: e.field ?? null, line: e.line ?? null, column: e.column ?? null } };
      }
    })
    .add('POST', '/admin/api/policies/simulate', EVERYONE, async (ctx) => {
      const input = await body(ctx);
      try {
        ctx.body = await simulate(db, buildContext, policies.current(), input, config.environment);
      } catch (err) {
        if (err instanceof ValidationError && err.field?.startsWith('document') && typeof input.document === 'string') throw policyError(err, input.document);
        throw err;
      }
    })
    .add('GET', '/admin/api/policies/:version', EVERYONE, async (ctx, [v]) => {
      const version = v === 'current' ? Number(policies.current().version) : /^\d{1,9}$/.test(v!) ? Number(v) : NaN;
      const found = Number.isNaN(version) ? undefined : await policies.get(version);
      if (found) ctx.body = found;
      else notFound(ctx, 'policy', 'version');
    })
    .add('GET', '/admin/api/ledger', EVERYONE, async (ctx) => {
      const { filter, limit, beforeSeq } = ledgerQueryParams(queryParams(ctx));
      ctx.body = await queryLedger(db, filter, limit, beforeSeq);
    })
    .add('GET', '/admin/api/ledger/stats', EVERYONE, async (ctx) => {
      const hours = stringFilter(queryParams(ctx), 'hours') ?? '24';
      if (!/^\d{1,3}$/.test(hours) || Number(hours) < 1 || Number(hours) > 168) throw new ValidationError('hours must be an integer from 1 to 168', 'hours');
      const now = Date.now();
      const since = new Date(now - Number(hours) * 3_600_000);
      ctx.body = { since: since.toISOString(), buckets: await decisionsPerHour(db, since, new Date(now)), entries: await ledgerSize(db), latest_checkpoint: (await latestCheckpoint(db)) ?? null };
    })
    .add('POST', '/admin/api/ledger/checkpoint', ADMINS, async (ctx) => {
      const made = await checkpointer.maybeCheckpoint(() => true);
      if (made) created(ctx, made);
      else sendError(ctx, 409, 'conflict', 'no new entries since the last checkpoint, or another process is making one', { field: null });
    })
    .add('POST', '/admin/api/ledger/verify', EVERYONE, async (ctx) => {
      const input = check<{ public_key?: string }>(validateVerify, await optionalBody(ctx));
      const key = await verifierKey(input.public_key ?? JSON.stringify(checkpointer.publicJwk));
      const anchors = existsSync(config.ledger.anchorDir) ? config.ledger.anchorDir : undefined;
      // One verification at a time per process: each reads the whole ledger.
      if (verifying) return sendError(ctx, 409, 'conflict', 'a verification is already running in this process; try again when it has finished', { field: null });
      verifying = true;
      if (ctx.accepts('application/json', 'application/x-ndjson') !== 'application/x-ndjson') {
        try {
          ctx.body = await verifyLedger(db, key, anchors);
        } finally {
          verifying = false;
        }
        return;
      }
      // Progress as it goes (a line per page of entries, with the total when it started), then the report:
      // a long check shows it is alive. A caller that hangs up ends the stream; the check still finishes.
      let total: number;
      try {
        total = await ledgerSize(db);
      } catch (err) {
        verifying = false;
        throw err;
      }
      const out = new PassThrough();
      out.on('error', () => {});
      const line = (o: unknown) => { if (!out.destroyed) out.write(`${JSON.stringify(o)}\n`); };
      ctx.type = 'application/x-ndjson';
      ctx.body = out;
      line({ progress: { entries: 0, total } });
      verifyLedger(db, key, anchors, (entries) => line({ progress: { entries, total } }))
        .then((report) => line({ report }), (err: unknown) => {
          log.warn('ledger verification failed to run', { err });
          line({ error: 'temporarily_unavailable', error_description: 'the ledger could not be read to the end' });
        })
        .finally(() => {
          verifying = false;
          out.end();
        });
    })
    .add('GET', '/admin/api/ledger/export', EVERYONE, async (ctx) => {
      const since = stringFilter(queryParams(ctx), 'since');
      const lines = exportLedger(db, since === undefined ? undefined : parseSince(since));
      // The first page is read before answering, so an unreachable database is still a 503.
      const first = await lines.next();
      ctx.type = 'application/x-ndjson';
      ctx.body = Readable.from((async function* () {
        if (!first.done) yield first.value;
        yield* lines;
      })());
    })
    .add('POST', '/admin/api/policies/replay', EVERYONE, async (ctx) => { ctx.body = await replayFromBody(db, await body(ctx)); })
    .add('POST', '/admin/api/revocations', ADMINS, async (ctx) => {
      const input = check<RevocationBody>(validateRevocation, await body(ctx));
      const { reason, ...target } = input;
      if (Object.keys(target).length !== 1) throw new ValidationError('name exactly one of jti, task, client_id, user', 'jti');
      created(ctx, await revokeCascade(db, target as RevocationTarget, who(ctx), reason ?? 'revoked by an admin'));
    })
    .add('GET', '/admin/api/tasks', EVERYONE, async (ctx) => { ctx.body = await listTasks(db, queryParams(ctx)); })
    .add('GET', '/admin/api/tasks/:task', EVERYONE, async (ctx, [task]) => {
      const view = await taskView(db, task!);
      if (view) ctx.body = view;
      else notFound(ctx, 'task', 'task');
    })
    .add('POST', '/admin/api/tasks/:task/suspend', ADMINS, async (ctx, [task]) => changeTaskRoute(ctx, task!, 'suspend'))
    .add('POST', '/admin/api/tasks/:task/resume', ADMINS, async (ctx, [task]) => changeTaskRoute(ctx, task!, 'resume'))
    .add('POST', '/admin/api/tasks/:task/revoke', ADMINS, async (ctx, [task]) => changeTaskRoute(ctx, task!, 'revoke'))
    .add('GET', '/admin/api/reviews', EVERYONE, async (ctx) => { ctx.body = await listReviews(db, stringFilter(queryParams(ctx), 'status')); })
    .add('POST', '/admin/api/reviews/:id/approve', REVIEWERS, async (ctx, [id]) => {
      const { comment } = check<{ comment?: string }>(validateReviewDecision, await optionalBody(ctx));
      const r = await decideReview(db, id!, true, await reviewer(ctx), comment, reviewDecided);
      if (r) ctx.body = r;
      else notFound(ctx, 'review', 'id');
    })
    .add('POST', '/admin/api/reviews/:id/deny', REVIEWERS, async (ctx, [id]) => {
      const { comment } = check<{ comment?: string }>(validateReviewDecision, await optionalBody(ctx));
      const r = await decideReview(db, id!, false, await reviewer(ctx), comment, reviewDecided);
      if (r) ctx.body = r;
      else notFound(ctx, 'review', 'id');
    })
    .add('GET', '/admin/api/keys', EVERYONE, async (ctx) => {
      const now = Date.now();
      const active = keyring.active(now);
      ctx.body = {
        items: keyring.published(now).map((k) => ({
          kid: k.kid,
          alg: k.alg,
          status: k === active ? 'active' : k.activatesAt > now ? 'next' : 'retired',
          activates_at: new Date(k.activatesAt).toISOString(),
        })),
        next_cursor: null,
      };
    })
    .add('POST', '/admin/api/keys/rotate', ADMINS, async (ctx) => {
      // No body at all means the configured overlap.
      const input = check<{ overlap_seconds?: number }>(validateRotate, await optionalBody(ctx));
      const overlap = input.overlap_seconds ?? config.rotationOverlap;
      const tooShort = overlapTooShort(overlap, config.minRotationOverlap);
      if (tooShort) throw new ValidationError(tooShort, 'overlap_seconds');
      const result = await rotateSigningKey(db, kek, config.signingAlg, overlap, who(ctx));
      await onKeysChanged();
      created(ctx, result);
    });

  return async (ctx: Context): Promise<void> => {
    ctx.set('Cache-Control', 'no-store');
    const byAddress = limiter.take(`admin-ip:${ctx.ip}`);
    if (!byAddress.ok) return sendRateLimited(ctx, byAddress.retryAfter);
    // The API's description is public: it says what the API is, nothing about this deployment.
    if (ctx.path === '/admin/api/openapi.json' && (ctx.method === 'GET' || ctx.method === 'HEAD')) {
      ctx.body = openApiDocument;
      return;
    }
    try {
      const auth = ctx.get('authorization');
      const match = /^Bearer ([\x21-\x7E]+)$/i.exec(auth);
      if (!match) {
        ctx.set('WWW-Authenticate', 'Bearer realm="intentgate-admin"');
        return sendError(ctx, 401, 'invalid_token', 'an admin bearer token is required');
      }
      const admin = localAdminToken && sameSecret(match[1]!, localAdminToken) ? LOCAL_CLI : await authenticateAdmin(db, match[1]!);
      if (!admin) {
        ctx.set('WWW-Authenticate', 'Bearer realm="intentgate-admin", error="invalid_token"');
        return sendError(ctx, 401, 'invalid_token', 'the admin token is not valid or has been revoked');
      }
      ctx.state.admin = admin;
      const byAdmin = limiter.take(`admin:${admin.id}`);
      if (!byAdmin.ok) return sendRateLimited(ctx, byAdmin.retryAfter);
      if (!(await router.dispatch(ctx))) sendError(ctx, 404, 'not_found', `no admin endpoint ${ctx.path}`);
    } catch (err) {
      if (err instanceof ValidationError) {
        // A policy document's error also says where it is (line, column), for the console's editor.
        const at = 'line' in err ? { line: err.line, column: (err as { column?: number }).column } : {};
        return sendError(ctx, err.status, err.code, err.message, { field: err.field ?? null, ...at });
      }
      if (err instanceof BodyError) return sendError(ctx, err.status, 'invalid_request', err.message, { field: null });
      if (isRejectedInput(err)) {
        return sendError(ctx, 400, 'invalid_request', 'a value was not accepted by storage', { field: null });
      }
      if (isStorageFailure(err)) {
        log.warn('admin request failed: storage unavailable', { err });
        return sendUnavailable(ctx);
      }
      throw err;
    }
  };
}
