import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type Config } from './config/index.ts';
import { loadKek, type Kek } from './crypto/kek.ts';
import { overlapTooShort, rotateSigningKey } from './keys/rotate.ts';
import { createAdmin, revokeAdmin, updateAdmin } from './registry/admins.ts';
import { createClient, listClients, rotateClientSecret } from './registry/clients.ts';
import { createIssuer } from './registry/issuers.ts';
import { createResource } from './registry/resources.ts';
import { ValidationError } from './registry/validate.ts';
import { createDb, type Db } from './store/db.ts';
import { migrate } from './store/migrate.ts';
import { embeddedLock } from './store/embedded_lock.ts';
import { startServer } from './server.ts';
import { mintDevUserToken } from './keys/dev_issuer.ts';
import { compilePolicy } from './policy/compile.ts';
import { parsePolicyDocument } from './policy/document.ts';
import { runFixtures } from './policy/fixtures.ts';
import { parseSince, replay } from './policy/replay.ts';
import { loadLedgerKey } from './ledger/key.ts';
import { decodeRows } from './ledger/query.ts';
import { publicKeyFrom, verifyLedger } from './ledger/verify.ts';

const USAGE = `usage: intentgate <command>

  start-dev                      run in development mode (what \`npm start\` runs)
  serve [--no-migrate]           run in production mode
  migrate                        apply the database migrations
  client create --name N [--client-id ID] [--grant-types a,b] [--scope "s1 s2"]
                [--auth-method M] [--resource-server URI]
  client list
  client rotate-secret <client_id>
  resource create --identifier URI --name N [--scope name:sensitivity:operation ...] [--ttl S]
  issuer add --issuer URL (--jwks-uri URL | --jwks-file FILE) --audience A [--audience B ...]
             [--algorithms RS256,ES256] [--typ JWT ...] [--scope-claim scope|scp]
  admin token create --name N [--role admin|reviewer|auditor] [--issuer URL --sub S]
                                 --issuer/--sub bind it to a person (required for a reviewer)
  admin token role <admin_id> <admin|reviewer|auditor>
  admin token revoke <admin_id>
  keys rotate [--overlap SECONDS]
                                 rotate the signing keys; the overlap is at least keys.min_rotation_overlap (60 s)
  dev token --sub S [--scope "s1 s2"] [--ttl SECONDS] [--claim name=value ...]
                                 a user token from the development issuer (development mode only)
  policy test <fixtures.yaml> [--policy FILE]
                                 run policy expectation fixtures (default: the configured policy)
  policy replay --policy DRAFT.yaml [--since 7d]
                                 re-decide recorded exchanges under a draft; list what would change
  ledger verify [--anchors DIR] [--public-key FILE]
                                 check the whole ledger; exit 1 naming the first bad entry
  ledger export [--since 7d]     the ledger as NDJSON on stdout

Configuration comes from the environment (DATABASE_URL, DATA_DIR, INTENTGATE_KEK, ...; see README).`;

const CLI_ACTOR = 'cli';

class UsageError extends Error {}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

async function withStore<T>(fn: (db: Db, kek: Kek, config: Config) => Promise<T>): Promise<T> {
  const config = loadConfig('development');
  const pid = config.databaseUrl ? undefined : embeddedLock(config.dataDir).holder();
  if (pid) throw new UsageError(`a server (pid ${pid}) is running on the embedded database in ${config.dataDir}; stop it or use the admin API`);
  const { kek } = loadKek(config.kek, config.dataDir, false);
  const db = createDb({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolMax: 2 });
  try {
    await migrate(db);
    return await fn(db, kek, config);
  } finally {
    await db.destroy();
  }
}

async function run(config: Config, migrateAtStart: boolean): Promise<void> {
  const server = await startServer(config, { migrate: migrateAtStart });
  const dev = config.mode === 'development';
  const lines = [
    dev ? '  intentgate is running in DEVELOPMENT MODE: not for production use' : '  intentgate is running',
    `  issuer:   ${config.issuer}`,
    `  listening: ${server.url}`,
    `  database: ${config.databaseUrl ? 'PostgreSQL (DATABASE_URL)' : `embedded PGlite in ${config.dataDir}`}`,
  ];
  if (server.generatedAdminToken) {
    lines.push('', `  admin token (shown once, stored hashed): ${server.generatedAdminToken}`);
  }
  const bar = '='.repeat(78);
  process.stderr.write(`\n${bar}\n${lines.join('\n')}\n${bar}\n\n`);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`received ${signal}; draining: finishing in-flight requests\n`);
    // The drain gives up on connections at server.shutdown_timeout; this is the backstop should the closing
    // steps after it (final checkpoint, database) hang regardless.
    setTimeout(() => {
      process.stderr.write('shutdown did not finish in time; exiting\n');
      process.exit(1);
    }, (config.server.shutdownTimeout + 5) * 1000).unref();
    server.close().then(() => {
      process.stderr.write('drained; exiting\n');
      process.exit(0);
    }, () => process.exit(1));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

function scopesFrom(values: string[] | undefined) {
  return (values ?? []).map((v) => {
    // Scope names may contain colons themselves (expenses:read), so the label and operation come off the end.
    const parts = v.split(':');
    const operation = parts.pop();
    const sensitivity = parts.pop();
    const name = parts.join(':');
    if (!name || !sensitivity || !operation) throw new UsageError(`--scope takes name:sensitivity:operation, got ${v}`);
    return { name, sensitivity, operation };
  });
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      'no-migrate': { type: 'boolean' },
      name: { type: 'string' },
      'client-id': { type: 'string' },
      'grant-types': { type: 'string' },
      scope: { type: 'string', multiple: true },
      'auth-method': { type: 'string' },
      'resource-server': { type: 'string' },
      identifier: { type: 'string' },
      ttl: { type: 'string' },
      issuer: { type: 'string' },
      'jwks-uri': { type: 'string' },
      'jwks-file': { type: 'string' },
      audience: { type: 'string', multiple: true },
      algorithms: { type: 'string' },
      typ: { type: 'string', multiple: true },
      'scope-claim': { type: 'string' },
      overlap: { type: 'string' },
      sub: { type: 'string' },
      role: { type: 'string' },
      claim: { type: 'string', multiple: true },
      policy: { type: 'string' },
      since: { type: 'string' },
      anchors: { type: 'string' },
      'public-key': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const cmd = positionals.join(' ');
  if (values.help || positionals.length === 0) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const [a, b, c] = positionals;
  switch (true) {
    case cmd === 'start-dev':
      return run(loadConfig('development'), true);
    case cmd === 'serve':
      return run(loadConfig('production'), !values['no-migrate']);
    case cmd === 'migrate': {
      const config = loadConfig('development');
      const db = createDb({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolMax: 1 });
      try {
        print({ applied: await migrate(db) });
      } finally {
        await db.destroy();
      }
      return;
    }
    case cmd === 'client create':
      return withStore(async (db, kek) => print(await createClient(db, kek, {
        ...(values['client-id'] ? { client_id: values['client-id'] } : {}),
        ...(values.name ? { client_name: values.name } : {}),
        ...(values['grant-types'] ? { grant_types: values['grant-types'].split(',') } : {}),
        ...(values.scope ? { scope: values.scope.join(' ') } : {}),
        ...(values['auth-method'] ? { token_endpoint_auth_method: values['auth-method'] } : {}),
        ...(values['resource-server'] ? { resource_server: values['resource-server'] } : {}),
      }, CLI_ACTOR)));
    case cmd === 'client list':
      return withStore(async (db) => print(await listClients(db, { limit: 200, after: undefined }, {})));
    case a === 'client' && b === 'rotate-secret' && c !== undefined && positionals.length === 3:
      return withStore(async (db, kek) => {
        const client = await rotateClientSecret(db, kek, c, CLI_ACTOR);
        if (!client) throw new UsageError(`no client ${c}`);
        print(client);
      });
    case cmd === 'resource create':
      return withStore(async (db) => print(await createResource(db, {
        identifier: values.identifier,
        name: values.name,
        scopes: scopesFrom(values.scope),
        ...(values.ttl ? { access_token_ttl: Number(values.ttl) } : {}),
      }, CLI_ACTOR)));
    case cmd === 'issuer add':
      return withStore(async (db) => print(await createIssuer(db, {
        issuer: values.issuer,
        ...(values['jwks-uri'] ? { jwks_uri: values['jwks-uri'] } : {}),
        ...(values['jwks-file'] ? { jwks: JSON.parse(readFileSync(values['jwks-file'], 'utf8')) } : {}),
        audiences: values.audience,
        ...(values.algorithms ? { algorithms: values.algorithms.split(',') } : {}),
        ...(values.typ ? { typs: values.typ } : {}),
        ...(values['scope-claim'] ? { scope_claim: values['scope-claim'] } : {}),
      }, CLI_ACTOR)));
    case cmd === 'admin token create': {
      if ((values.issuer === undefined) !== (values.sub === undefined)) throw new UsageError('--issuer and --sub go together: the person the credential is bound to');
      return withStore(async (db) => print(await createAdmin(db, {
        name: values.name,
        ...(values.role !== undefined ? { role: values.role } : {}),
        ...(values.issuer !== undefined ? { user: { issuer: values.issuer, sub: values.sub } } : {}),
      }, CLI_ACTOR)));
    }
    case a === 'admin' && b === 'token' && c === 'role' && positionals.length === 5:
      return withStore(async (db) => {
        const updated = await updateAdmin(db, positionals[3]!, { role: positionals[4] }, CLI_ACTOR);
        if (!updated) throw new UsageError(`no admin ${positionals[3]}`);
        print(updated);
      });
    case a === 'admin' && b === 'token' && c === 'revoke' && positionals.length === 4:
      return withStore(async (db) => {
        if (!(await revokeAdmin(db, positionals[3]!, CLI_ACTOR))) throw new UsageError(`no admin ${positionals[3]}`);
        print({ revoked: positionals[3] });
      });
    case cmd === 'keys rotate':
      return withStore(async (db, kek, config) => {
        const overlap = values.overlap === undefined ? config.rotationOverlap : Number(values.overlap);
        if (!Number.isInteger(overlap) || overlap < 0) throw new UsageError('--overlap takes a whole number of seconds');
        const tooShort = overlapTooShort(overlap, config.minRotationOverlap);
        if (tooShort) throw new UsageError(`--overlap: ${tooShort}`);
        print(await rotateSigningKey(db, kek, config.signingAlg, overlap, CLI_ACTOR));
      });
    case cmd === 'dev token': {
      const config = loadConfig('development');
      if (!config.devIssuer) throw new UsageError('the development issuer is switched off (development_issuer: false)');
      if (!values.sub) throw new UsageError('--sub is required');
      const ttl = values.ttl === undefined ? 3600 : Number(values.ttl);
      if (!Number.isInteger(ttl) || ttl < 1 || ttl > 86_400) throw new UsageError('--ttl takes 1 to 86400 seconds');
      const claims: Record<string, unknown> = {};
      for (const c of values.claim ?? []) {
        const eq = c.indexOf('=');
        if (eq < 1) throw new UsageError(`--claim takes name=value, got ${c}`);
        const raw = c.slice(eq + 1);
        let value: unknown = raw;
        try { value = JSON.parse(raw); } catch { /* a plain string */ }
        claims[c.slice(0, eq)] = value;
      }
      process.stdout.write(`${await mintDevUserToken(config, values.sub, (values.scope ?? []).join(' '), ttl, claims)}\n`);
      return;
    }
    case a === 'policy' && b === 'test' && c !== undefined && positionals.length === 3: {
      const config = loadConfig('development');
      const policyFile = values.policy ?? config.policyFile;
      const policy = compilePolicy(parsePolicyDocument(readFileSync(policyFile, 'utf8')), policyFile);
      const report = runFixtures(policy, readFileSync(c, 'utf8'));
      for (const f of report.failed) {
        process.stdout.write(`FAIL ${f.name}\n  expected ${JSON.stringify(f.expected)}\n  actual   ${JSON.stringify({ outcome: f.actual.outcome, granted_scopes: f.actual.grantedScopes, reasons: f.actual.reasons, ttl: f.actual.ttl, matched_rules: f.actual.matchedRules })}\n`);
      }
      process.stdout.write(`${report.passed} passed, ${report.failed.length} failed\n`);
      if (report.failed.length) process.exitCode = 1;
      return;
    }
    case cmd === 'policy replay':
      return withStore(async (db) => {
        if (!values.policy) throw new UsageError('--policy DRAFT.yaml is required');
        const draft = compilePolicy(parsePolicyDocument(readFileSync(values.policy, 'utf8')), 'draft');
        const report = await replay(db, draft, values.since ? parseSince(values.since) : undefined);
        for (const c of report.changed) {
          process.stdout.write(`#${c.seq} ${c.at} ${c.client_id} ${JSON.stringify(c.user)}: ${c.original.decision} -> ${c.replayed.decision} (${c.replayed.reasons.join(', ') || c.replayed.granted_scope.join(' ')})\n`);
        }
        process.stdout.write(`${report.examined} examined, ${report.changed.length} would change, ${report.unchanged} unchanged, ${report.skipped} skipped\n`);
      });
    case cmd === 'ledger verify':
      return withStore(async (db, _kek, config) => {
        const publicKey = values['public-key']
          ? await publicKeyFrom(readFileSync(values['public-key'], 'utf8'))
          : await publicKeyFrom(JSON.stringify((await loadLedgerKey(config)).key.publicJwk));
        const started = Date.now();
        const report = await verifyLedger(db, publicKey, values.anchors ?? (existsSync(config.ledger.anchorDir) ? config.ledger.anchorDir : undefined));
        const secs = ((Date.now() - started) / 1000).toFixed(1);
        if (!report.ok) {
          process.stdout.write(`ledger verification FAILED at entry ${report.problem!.seq}: ${report.problem!.message}\n`);
          process.exitCode = 1;
          return;
        }
        process.stdout.write(`ledger OK: ${report.entries} entries, head ${report.head_hash}, ${report.checkpoints} checkpoints and ${report.anchors} anchors checked in ${secs} s\n`);
      });
    case cmd === 'ledger export':
      return withStore(async (db) => {
        const since = values.since ? parseSince(values.since) : undefined;
        let after = 0;
        for (;;) {
          const q = db('ledger_entries').where('seq', '>', after);
          if (since) q.where('at', '>=', since);
          const rows = await q.orderBy('seq', 'asc').limit(2000).select('seq', 'payload', 'leaf_hash', 'chain_hash');
          if (rows.length === 0) return;
          after = Number(rows.at(-1)!.seq);
          const lines = (await decodeRows(db, rows)).map((e) => JSON.stringify(e)).join('\n');
          if (!process.stdout.write(`${lines}\n`)) await new Promise((r) => process.stdout.once('drain', r));
        }
      });
    default:
      throw new UsageError(`unknown command: ${cmd}\n\n${USAGE}`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  const known = err instanceof UsageError || err instanceof ConfigError || err instanceof ValidationError;
  process.stderr.write(`intentgate: ${known ? (err as Error).message : (err as Error).stack ?? String(err)}\n`);
  process.exit(known ? 2 : 1);
});
