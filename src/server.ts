import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa, { type Context } from 'koa';
import type Provider from 'oidc-provider';
import { adminApi } from './admin/routes.ts';
import { adminConsole } from './admin/console.ts';
import { ConfigError, type Config } from './config/index.ts';
import { loadKek } from './crypto/kek.ts';
import { discoveryDocument } from './http/discovery.ts';
import { Drain } from './http/drain.ts';
import { safeErrorBodies, sendError, sendUnavailable } from './http/errors.ts';
import { checkQuery, FormError } from './http/form.ts';
import { buildProvider } from './http/provider.ts';
import { hasReadableUrl } from './http/request_url.ts';
import { tokenEndpoint } from './http/token.ts';
import { tokenStatusEndpoints } from './http/introspection.ts';
import { Keyring } from './keys/keyring.ts';
import { ensureSigningKey, KEYS_CHANNEL } from './keys/rotate.ts';
import { createLogger, type Logger } from './ops/log.ts';
import { createMetrics } from './ops/metrics.ts';
import { AdmissionGate } from './ops/admission.ts';
import { admissionControl } from './http/admission.ts';
import { portMessage, portUnavailable } from './ops/free_port.ts';
import { removeServerRecord, writeServerRecord } from './ops/server_record.ts';
import { RateLimiter } from './ops/rate_limit.ts';
import { bootstrapAdmin } from './registry/admins.ts';
import { createDb, isEmbedded, type Db } from './store/db.ts';
import { LedgerWriter, type StandingIndex } from './ledger/writer.ts';
import { UserLocks } from './tasks/user_lock.ts';
import { AgentHoldCache, HOLDS_CHANNEL, lockStandings } from './tasks/holds.ts';
import { Checkpointer, uncheckpointed } from './ledger/checkpoint.ts';
import { issuedTokensInsert, lockLiveParents } from './tokens/issued.ts';
import { loadLedgerKey } from './ledger/key.ts';
import { ledgerEndpoints } from './http/ledger.ts';
import { auditRefusals, noteAuthFailure } from './http/refusal_audit.ts';
import { AuthFailureLedger } from './ledger/auth_failures.ts';
import { isRejectedInput, isStorageFailure } from './store/errors.ts';
import { migrate } from './store/migrate.ts';
import { embeddedLock } from './store/embedded_lock.ts';
import { listen } from './store/notify.ts';
import { RegistryCache } from './registry/cache.ts';
import { REGISTRY_CHANNEL, REGISTRY_TABLES, type RegistryTable } from './registry/changes.ts';
import { sweepOidcPayloads } from './store/oidc_adapter.ts';
import { DetailTypes } from './exchange/details.ts';
import { sweepDpopProofs } from './exchange/dpop.ts';
import { devTrustedIssuer } from './keys/dev_issuer.ts';
import type { TrustedIssuer } from './registry/issuers.ts';
import { IssuerKeys } from './exchange/issuer_keys.ts';
import { buildDecisionContext } from './exchange/context.ts';
import { PolicyStore, POLICY_CHANNEL } from './policy/store.ts';

export interface RunningServer {
  url: string;
  port: number;
  /** The admin token generated on first start, when one was; shown once, stored only as a hash. */
  generatedAdminToken: string | undefined;
  /** The server's database handle, for embedders and tests that inspect what was recorded. */
  db: Db;
  close(): Promise<void>;
}

export interface StartOptions {
  migrate?: boolean;
  log?: Logger;
}

// Keys, policy and registry are re-read this often even without a NOTIFY, in case one was missed while reconnecting.
const KEY_RELOAD_MS = 30_000;

function routeLabel(path: string): string {
  if (path.startsWith('/admin/api/')) return path.split('/').slice(0, 4).join('/');
  if (path.startsWith('/ledger/entries/')) return '/ledger/entries/{seq}/proof';
  if (path === '/admin' || path.startsWith('/admin/')) return '/admin';
  if (['/ledger/events', '/.well-known/ledger-checkpoint', '/token', '/token/introspection', '/token/revocation', '/jwks', '/healthz', '/readyz', '/metrics', '/.well-known/oauth-authorization-server', '/.well-known/openid-configuration'].includes(path)) return path;
  return 'other';
}

/** Wires the parts together and listens. Composition only: each part owns its own logic. */
export async function startServer(config: Config, options: StartOptions = {}): Promise<RunningServer> {
  const log = options.log ?? createLogger(config.logLevel);
  // Before anything is created (keys, the admin token, the database): a taken port must not leave a first
  // start half done, with an admin token made and never shown.
  const busy = await portUnavailable(config.port, config.host);
  if (busy) throw new ConfigError(portMessage(config.port, config.host, busy));
  const { kek, generated, file } = loadKek(config.kek, config.dataDir, config.mode === 'development');
  if (generated) log.warn('generated a development key-encryption key; set INTENTGATE_KEK in production', { file });

  const lock = config.databaseUrl ? undefined : embeddedLock(config.dataDir);
  const holder = lock?.holder();
  if (holder) throw new ConfigError(`another process (pid ${holder}) is running on the embedded database in ${config.dataDir}`);
  const warn = (message: unknown) => log.warn('database', { message: String(message) });
  const db = createDb({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolMax: config.poolMax, warn });
  // Background jobs (key and policy reloads, sweeps, checkpoints) get a small pool of their own, so no load
  // on the request pool can starve them. The embedded database has one connection: shared there.
  const background = config.databaseUrl ? createDb({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolMax: 2, warn }) : db;
  const userLocks = new UserLocks(db, { databaseUrl: config.databaseUrl });
  const timers: NodeJS.Timeout[] = [];
  try {
    if (options.migrate !== false) {
      const applied = await migrate(db);
      if (applied.length) log.info('migrations applied', { applied });
    }
    // What an earlier run left unanchored (it crashed, or was killed), before this one appends anything.
    const leftPending = await uncheckpointed(db);
    const created = await ensureSigningKey(db, kek, config.signingAlg);
    if (created) log.info('created the first signing key', { kid: created });
    const keyring = new Keyring(background, kek, config.accessTokenTtl);
    await keyring.load();
    lock?.take();
    const generatedAdminToken = await bootstrapAdmin(db, config.adminToken);
    const policies = new PolicyStore(background);
    await policies.init(config.policyFile);
    const registry = new RegistryCache(background, kek);
    await registry.loadAll();
    // Agent holds in memory; on PostgreSQL relied on only while notifications are heard (src/tasks/holds.ts).
    const holds = new AgentHoldCache(db, isEmbedded(db));
    await holds.reload();
    const builtInIssuers = new Map<string, TrustedIssuer>();
    if (config.devIssuer) {
      const dev = await devTrustedIssuer(config);
      builtInIssuers.set(dev.issuer, dev);
      log.warn('the development issuer is trusted (development mode only)', { issuer: dev.issuer });
    }
    // Group commit on PostgreSQL; PGlite has one connection, so one job per transaction there.
    // Each grant's agent standing is re-read at commit: the copy in memory never decides alone that a token is minted.
    const ledger = new LedgerWriter(db, isEmbedded(db) ? 1 : 64, { insert: issuedTokensInsert, lockLiveParents }, { lockStandings } as StandingIndex<unknown>);
    const dpop = { db, tokenUrl: `${config.issuer}/token`, maxAge: config.exchange.dpopProofMaxAge, clockSkew: config.exchange.clockSkew };
    const exchange = { ledger, userLocks, db, config, keyring, issuerKeys: new IssuerKeys(), detailTypes: new DetailTypes(config.detailTypes), policies, builtInIssuers, registry, dpop };

    // Per authenticated client (the primary control) and per address (a guard sized for many agents behind one address).
    const tokenLimiter = new RateLimiter({ client: config.rateLimits.token, ip: config.rateLimits.tokenPerAddress });
    let provider: Provider = buildProvider({ config, db, keyring, log, limiter: tokenLimiter, registry, exchange });
    let keysVersion = keyring.version;
    const reloadKeys = async () => {
      await keyring.load();
      if (keyring.version !== keysVersion) {
        provider = buildProvider({ config, db, keyring, log, limiter: tokenLimiter, registry, exchange });
        keysVersion = keyring.version;
        log.info('signing keys changed; provider rebuilt', { active: keyring.active().kid });
      }
    };
    const safeReload = () => reloadKeys().catch((err) => log.warn('key reload failed', { err }));
    const reloadPolicy = () => policies.load().catch((err) => log.error('policy reload failed; keeping the version in force', { err }));
    const reloadRegistry = (table?: RegistryTable) => (table ? registry.reload(table) : registry.loadAll())
      .catch((err) => log.error('registry reload failed; keeping the copy in memory', { err }));
    const reloadHolds = () => holds.changed().catch((err) => log.warn('agent holds reload failed; standing is read from the database', { err }));
    const listener = listen(db, config.databaseUrl, [KEYS_CHANNEL, POLICY_CHANNEL, REGISTRY_CHANNEL, HOLDS_CHANNEL], (channel, payload) => {
      if (channel === KEYS_CHANNEL) void safeReload();
      else if (channel === POLICY_CHANNEL) void reloadPolicy();
      else if (channel === HOLDS_CHANNEL) void reloadHolds();
      else void reloadRegistry(REGISTRY_TABLES.find((t) => t === payload));
    }, (err) => {
      holds.listening(false);
      log.warn('notification connection failed', { err });
    }, () => {
      // (Re)connected: whatever was notified while the connection was down was missed.
      void reloadRegistry();
      holds.listening(true);
    });
    timers.push(setInterval(() => {
      void safeReload();
      void reloadPolicy();
      void reloadRegistry();
      void holds.reload().catch(() => undefined);
    }, KEY_RELOAD_MS).unref());
    timers.push(setInterval(() => {
      sweepOidcPayloads(background).catch((err) => log.warn('sweep failed', { err }));
      sweepDpopProofs(background).catch((err) => log.warn('DPoP proof sweep failed', { err }));
    }, config.oidcSweepInterval * 1000).unref());

    const { key: ledgerKey, generated: ledgerKeyFile } = await loadLedgerKey(config);
    if (ledgerKeyFile) log.warn('generated a development ledger checkpoint key; set INTENTGATE_LEDGER_KEY in production', { file: ledgerKeyFile });
    const checkpointer = new Checkpointer(background, ledgerKey, config.ledger.anchorDir);
    const { checkpointEvery, checkpointInterval } = config.ledger;
    // One checkpoint at a time in this process (the advisory lock would make a concurrent one a no-op).
    let checkpointing: Promise<unknown> = Promise.resolve();
    const checkpoint = (due: (entries: number, ms: number) => boolean, when: string) => {
      checkpointing = checkpointing.then(() => checkpointer.maybeCheckpoint(due))
        .then((c) => c && log.info('ledger checkpoint signed', { tree_size: c.tree_size, root_hash: c.root_hash, when }))
        .catch((err) => log.error('ledger checkpoint failed', { err, when }));
      return checkpointing;
    };
    // Whatever an earlier run left pending is anchored now, not after the interval: a server that crash-loops
    // faster than the interval would otherwise never anchor anything.
    if (leftPending > 0) void checkpoint(() => true, 'start-up');
    timers.push(setInterval(() => {
      void checkpoint((entries, ms) => entries >= checkpointEvery || ms >= checkpointInterval * 1000, 'interval');
    }, Math.min(5000, checkpointInterval * 1000)).unref());
    const gate = new AdmissionGate(config.server.maxConcurrency, config.server.maxQueueDelayMs);
    const metrics = createMetrics(db, gate);
    // Refusals after client authentication are recorded; failed client authentications counted, and
    // written in bounded form every interval and on shutdown.
    const authFailures = new AuthFailureLedger(ledger);
    const flushAuthFailures = () => authFailures.flush().catch((err) => log.warn('failed client authentications could not be recorded; kept for the next try', { err }));
    timers.push(setInterval(flushAuthFailures, config.ledger.authFailureInterval * 1000).unref());
    const adminLimiter = new RateLimiter(config.rateLimits.admin);
    const token = tokenEndpoint({ issuer: config.issuer, dpop, ledger, provider: () => provider, limiter: tokenLimiter, metrics, log, bodyLimit: config.bodyLimit });
    // The CLI's credential while this process holds the embedded database (ops/server_record.ts).
    const localAdminToken = lock ? `igl_${randomBytes(32).toString('base64url')}` : undefined;
    const admin = adminApi({ config, db, kek, keyring, limiter: adminLimiter, log, onKeysChanged: reloadKeys, policies, checkpointer, registry, localAdminToken,
      buildContext: (policy, request) => buildDecisionContext({ db, registry }, policy, request),
    });
    const consoleFiles = adminConsole();
    const discovery = discoveryDocument(config, exchange.detailTypes.names);
    const ledgerHttp = ledgerEndpoints({
      limiter: adminLimiter, db, registry, ledger, key: ledgerKey, provider: () => provider, bodyLimit: config.bodyLimit,
      authFailed: (reason) => noteAuthFailure({ authFailures, metrics }, 'ledger', reason),
    });
    const status = tokenStatusEndpoints({ db, registry, keyring, issuer: config.issuer, provider: () => provider, limiter: tokenLimiter, log, bodyLimit: config.bodyLimit });
    const auditDeps = { ledger, authFailures, metrics, limiter: tokenLimiter, log, provider: () => provider };
    const oauth = {
      token: auditRefusals('token', token, auditDeps),
      introspection: auditRefusals('introspection', status.introspection, auditDeps),
      revocation: auditRefusals('revocation', status.revocation, auditDeps),
    };

    const app = new Koa({ proxy: config.trustProxy });
    app.silent = true;
    const server = http.createServer();
    const drain = new Drain(server);

    // Requests still being handled; shutdown waits for them before closing the database under them.
    let inFlight = 0;
    let drained: (() => void) | undefined;
    app.use(async (ctx, next) => {
      inFlight++;
      try {
        await next();
      } finally {
        if (--inFlight === 0) drained?.();
      }
    });

    // Shed beyond the configured concurrency or queueing delay, before any body is read or database called.
    app.use(admissionControl(gate, metrics));
    app.use(safeErrorBodies);

    app.use(async (ctx, next) => {
      const started = process.hrtime.bigint();
      const incoming = ctx.get('x-request-id');
      const requestId = /^[A-Za-z0-9._-]{1,64}$/.test(incoming) ? incoming : randomUUID();
      ctx.state.requestId = requestId;
      ctx.set('X-Request-Id', requestId);
      try {
        await next();
      } catch (err) {
        if (isRejectedInput(err)) {
          // A value storage refused (a data exception): the caller's input, never an outage and never a 500.
          log.warn('request refused by storage as malformed', { request_id: requestId, err });
          sendError(ctx, 400, 'invalid_request', 'a value in the request was not accepted');
        } else if (isStorageFailure(err)) {
          log.warn('request failed: storage unavailable', { request_id: requestId, err });
          sendUnavailable(ctx);
        } else {
          log.error('unhandled error', { request_id: requestId, err, stack: (err as Error).stack });
          sendError(ctx, 500, 'server_error', `internal error (request id ${requestId})`);
        }
      }
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = routeLabel(ctx.path);
      metrics.requests.inc({ method: ctx.method, route, status: String(ctx.status) });
      metrics.latency.observe({ method: ctx.method, route }, seconds);
      log.info('request', { request_id: requestId, method: ctx.method, path: ctx.path, status: ctx.status, ms: Math.round(seconds * 1000), ip: ctx.ip });
    });

    app.use(async (ctx: Context) => {
      const { method, path } = ctx;
      const adminField = path.startsWith('/admin/api') ? { field: null } : {};
      if (!hasReadableUrl(ctx)) return sendError(ctx, 400, 'invalid_request', 'the Host header (or forwarded host and protocol) is not a valid URL authority', adminField);
      try {
        checkQuery(ctx);
      } catch (err) {
        if (!(err instanceof FormError)) throw err;
        return sendError(ctx, 400, 'invalid_request', err.message, adminField);
      }
      if (path.startsWith('/admin/api/') || path === '/admin/api') return admin(ctx);
      if (path === '/admin' || path.startsWith('/admin/')) return consoleFiles(ctx);
      if (path === '/token' || path === '/token/introspection' || path === '/token/revocation') {
        if (method !== 'POST') return sendError(ctx, 405, 'invalid_request', 'use POST');
        if (path === '/token') return oauth.token(ctx);
        return path === '/token/introspection' ? oauth.introspection(ctx) : oauth.revocation(ctx);
      }
      if (path === '/ledger/events') {
        if (method !== 'POST') return sendError(ctx, 405, 'invalid_request', 'use POST');
        return ledgerHttp.event(ctx);
      }
      const proof = /^\/ledger\/entries\/([^/]+)\/proof$/.exec(path);
      if (proof) {
        if (method !== 'GET') return sendError(ctx, 405, 'invalid_request', 'use GET');
        return ledgerHttp.proof(ctx, proof[1]!);
      }
      if (method !== 'GET' && method !== 'HEAD') return sendError(ctx, 405, 'invalid_request', `method ${method} is not allowed here`);
      switch (path) {
        case '/healthz':
          ctx.body = { status: 'ok' };
          return;
        case '/readyz': {
          if (drain.draining) {
            // Shutting down: out of rotation at once, whatever the database says.
            ctx.set('Retry-After', '5');
            return sendError(ctx, 503, 'temporarily_unavailable', 'the server is shutting down');
          }
          // On the background pool: a saturated request pool is load, not an unreachable database.
          const ready = await Promise.race([
            background.raw('select 1').then(() => true, () => false),
            new Promise<boolean>((r) => setTimeout(() => r(false), 2000).unref()),
          ]);
          if (ready && keyring.loaded) {
            ctx.body = { status: 'ready' };
          } else {
            ctx.set('Retry-After', '5');
            sendError(ctx, 503, 'temporarily_unavailable', ready ? 'signing keys are not loaded' : 'the database is unreachable');
          }
          return;
        }
        case '/metrics':
          ctx.type = metrics.registry.contentType;
          ctx.body = await metrics.registry.metrics();
          return;
        case '/jwks':
          ctx.set('Cache-Control', 'public, max-age=60');
          ctx.type = 'application/json';
          ctx.body = keyring.jwks();
          return;
        case '/.well-known/ledger-checkpoint':
          return ledgerHttp.checkpoint(ctx);
        case '/.well-known/oauth-authorization-server':
        case '/.well-known/openid-configuration':
          ctx.set('Cache-Control', 'public, max-age=300');
          ctx.body = discovery;
          return;
        default:
          sendError(ctx, 404, 'not_found', `no endpoint ${path}`);
      }
    });

    server.on('request', drain.handler(app.callback()));
    server.requestTimeout = 30_000;
    server.headersTimeout = 10_000;
    server.keepAliveTimeout = config.server.keepAliveTimeout * 1000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => reject(err.code ? new ConfigError(portMessage(config.port, config.host, err.code)) : err));
      // A deep accept queue: under a burst of connections, a quick 503 beats a dropped SYN (retried after 1 s, 3 s…).
      server.listen({ port: config.port, host: config.host, backlog: 4096 }, () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
    if (config.mode === 'development') {
      const loopback = config.host === '0.0.0.0' ? '127.0.0.1' : config.host === '::' ? '[::1]' : undefined;
      writeServerRecord(config.dataDir, {
        pid: process.pid, url: loopback ? `http://${loopback}:${port}` : url, issuer: config.issuer,
        ...(lock ? { admin_token: localAdminToken } : {}),
      });
    }

    let closing: Promise<void> | undefined;
    const close = () => {
      closing ??= (async () => {
        const timeoutMs = config.server.shutdownTimeout * 1000;
        const deadline = Date.now() + timeoutMs;
        const { forced } = await drain.drain(timeoutMs);
        if (forced > 0) log.warn('shutdown deadline passed; open connections closed', { connections: forced });
        timers.forEach(clearInterval);
        // A client that hung up does not end its request's work: let that finish (within the same deadline)
        // before the pool goes.
        if (inFlight > 0) {
          await new Promise<void>((r) => {
            drained = r;
            setTimeout(r, Math.max(0, deadline - Date.now())).unref();
          });
        }
        await checkpoint(() => true, 'shutdown');
        await flushAuthFailures();
        await listener.close();
        holds.close();
        await userLocks.close();
        if (background !== db) await background.destroy();
        await db.destroy();
        lock?.release();
        removeServerRecord(config.dataDir);
      })();
      return closing;
    };
    return { url, port, generatedAdminToken, db, close };
  } catch (err) {
    timers.forEach(clearInterval);
    await userLocks.close();
    if (background !== db) await background.destroy().catch(() => {});
    await db.destroy().catch(() => {});
    lock?.release();
    throw err;
  }
}
