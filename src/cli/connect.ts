import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { adminApi } from '../admin/routes.ts';
import { ConfigError, type Config } from '../config/index.ts';
import { loadKek } from '../crypto/kek.ts';
import { safeErrorBodies } from '../http/errors.ts';
import { buildDecisionContext } from '../exchange/context.ts';
import { RegistryCache } from '../registry/cache.ts';
import { Keyring } from '../keys/keyring.ts';
import { ensureSigningKey } from '../keys/rotate.ts';
import { Checkpointer } from '../ledger/checkpoint.ts';
import { loadLedgerKey } from '../ledger/key.ts';
import { createLogger } from '../ops/log.ts';
import { RateLimiter } from '../ops/rate_limit.ts';
import { readServerRecord } from '../ops/server_record.ts';
import { PolicyStore } from '../policy/store.ts';
import { createDb } from '../store/db.ts';
import { embeddedLock } from '../store/embedded_lock.ts';
import { migrate } from '../store/migrate.ts';
import { AdminApi } from './admin_api.ts';

export interface Connection {
  api: AdminApi;
  /** `server` when a running server answers; `database` when the CLI opened the database itself. */
  via: 'server' | 'database';
  close(): Promise<void>;
}

/**
 * How the CLI reaches the admin API:
 * - `INTENTGATE_URL` (with `ADMIN_TOKEN`): that server, wherever it runs;
 * - a development server holding the embedded database in DATA_DIR (which no second process may open):
 *   that server, with the credential it left for local tools in DATA_DIR/server.json;
 * - otherwise the database directly (PostgreSQL is safe to share with running servers), through the same
 *   admin API composed in this process on a loopback port.
 */
export async function connect(config: Config, env: NodeJS.ProcessEnv = process.env): Promise<Connection> {
  if (env.INTENTGATE_URL) {
    if (!env.ADMIN_TOKEN) throw new ConfigError('INTENTGATE_URL needs ADMIN_TOKEN: an admin credential for that server');
    return { api: new AdminApi(env.INTENTGATE_URL, env.ADMIN_TOKEN), via: 'server', close: async () => {} };
  }
  if (!config.databaseUrl) {
    const record = readServerRecord(config.dataDir);
    if (record?.admin_token) return { api: new AdminApi(record.url, record.admin_token), via: 'server', close: async () => {} };
    const holder = embeddedLock(config.dataDir).holder();
    if (holder) {
      throw new ConfigError(`a server (pid ${holder}) holds the embedded database in ${config.dataDir} and left no admin address: set INTENTGATE_URL and ADMIN_TOKEN, or stop it`);
    }
  }
  return inProcess(config);
}

async function inProcess(config: Config): Promise<Connection> {
  let kek;
  try {
    ({ kek } = loadKek(config.kek, config.dataDir, false));
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(`${err.message}: set INTENTGATE_KEK, or start the server once (npm start) to create one`);
    throw err;
  }
  const db = createDb({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolMax: 2 });
  let server: http.Server | undefined;
  try {
    await migrate(db);
    await ensureSigningKey(db, kek, config.signingAlg);
    const keyring = new Keyring(db, kek, config.accessTokenTtl);
    await keyring.load();
    const policies = new PolicyStore(db);
    await policies.init(config.policyFile);
    const checkpointer = new Checkpointer(db, (await loadLedgerKey(config)).key, config.ledger.anchorDir);
    // Changes made here reach a running server's cache by the registry's own NOTIFY.
    const registry = new RegistryCache(db, kek);
    await registry.loadAll();
    const token = randomBytes(32).toString('base64url');
    const handler = adminApi({
      config, db, kek, keyring, policies, checkpointer, registry, localAdminToken: token,
      buildContext: (policy, request) => buildDecisionContext({ db, registry }, policy, request),
      // One caller, this process: no budget to protect.
      limiter: new RateLimiter({ burst: 1_000_000, per_second: 1_000_000 }),
      log: createLogger('silent'),
      onKeysChanged: async () => {},
    });
    const app = new Koa();
    app.silent = true;
    app.use(safeErrorBodies);
    app.use((ctx) => handler(ctx));
    server = http.createServer(app.callback());
    await new Promise<void>((resolve, reject) => {
      server!.once('error', reject);
      server!.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    const s = server;
    return {
      api: new AdminApi(`http://127.0.0.1:${port}`, token),
      via: 'database',
      close: async () => {
        s.closeAllConnections();
        await new Promise<void>((r) => s.close(() => r()));
        await db.destroy();
      },
    };
  } catch (err) {
    server?.close();
    await db.destroy().catch(() => {});
    throw err;
  }
}
