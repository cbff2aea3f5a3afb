import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ParseArgsConfig } from 'node:util';
import { exportPKCS8, exportSPKI, generateKeyPair } from 'jose';
import { loadConfig, type Config } from '../config/index.ts';
import { mintDevUserToken } from '../keys/dev_issuer.ts';
import { compilePolicy } from '../policy/compile.ts';
import { parsePolicyDocument } from '../policy/document.ts';
import { runFixtures } from '../policy/fixtures.ts';
import type { ReplayReport } from '../policy/replay.ts';
import type { VerifyReport } from '../ledger/verify.ts';
import { readServerRecord } from '../ops/server_record.ts';
import { embeddedLock } from '../store/embedded_lock.ts';
import type { AdminApi } from './admin_api.ts';
import type { CliIo } from './io.ts';
import { progress } from './progress.ts';

import { UsageError } from './usage_error.ts';

export { UsageError };

type Options = NonNullable<ParseArgsConfig['options']>;
type Values = Record<string, string | boolean | string[] | undefined>;

export interface Invocation {
  values: Values;
  /** The positional arguments after the command's words. */
  args: string[];
  io: CliIo;
}

export interface Command {
  words: string[];
  /** Positional arguments, as the usage line names them. */
  args?: string[];
  /** Whether the last positional may repeat or be absent; by default exactly `args`. */
  usage: string;
  help: string;
  options?: Options;
  /** Resolves with the exit code when it is not 0 (a check that found a problem). */
  run(inv: Invocation): Promise<number | void>;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const list = (v: unknown): string[] | undefined => (Array.isArray(v) ? v as string[] : undefined);

function print(io: CliIo, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Reads a file the user named; a missing one is a one-line error naming it. */
export function readNamedFile(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(`cannot read ${what} ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : code ?? (err as Error).message}`);
  }
}

/** Runs `fn` against the admin API (a running server's, or the database's), then lets go of it. */
async function withApi<T>(io: CliIo, fn: (api: AdminApi, config: Config) => Promise<T>): Promise<T> {
  const config = loadConfig('development', io.env);
  // Loaded on use: the admin API and its domain modules are most of the CLI's start-up time.
  const { connect } = await import('./connect.ts');
  const conn = await connect(config, io.env);
  try {
    return await fn(conn.api, config);
  } finally {
    await conn.close();
  }
}

const enc = encodeURIComponent;

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

function wholeSeconds(value: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) throw new UsageError(`${flag} takes a whole number of seconds from ${min} to ${max}, got ${value}`);
  return n;
}

const PROGRESS = { progress: { type: 'boolean' } } as const;

export const COMMANDS: Command[] = [
  {
    words: ['start-dev'],
    usage: 'start-dev',
    help: 'Runs intentgate in development mode (what `npm start` runs): embedded PGlite in DATA_DIR unless DATABASE_URL is set, http://localhost:$PORT, the development issuer on.',
    run: async () => { throw new Error('handled by the entry point'); },
  },
  {
    words: ['serve'],
    usage: 'serve [--no-migrate]',
    help: 'Runs intentgate in production mode: needs an https ISSUER, DATABASE_URL, INTENTGATE_KEK, INTENTGATE_LEDGER_KEY and INTENTGATE_ANCHOR_DIR.\n  --no-migrate   do not apply migrations at start (run `intentgate migrate` as the owning role instead)',
    options: { 'no-migrate': { type: 'boolean' } },
    run: async () => { throw new Error('handled by the entry point'); },
  },
  {
    words: ['migrate'],
    usage: 'migrate',
    help: 'Applies the database migrations and prints the ones applied.',
    async run({ io }) {
      const config = loadConfig('development', io.env);
      const holder = config.databaseUrl ? undefined : embeddedLock(config.dataDir).holder();
      if (holder) throw new UsageError(`a server (pid ${holder}) runs on the embedded database in ${config.dataDir}; it applied the migrations when it started`);
      const { createDb } = await import('../store/db.ts');
      const { migrate } = await import('../store/migrate.ts');
      const db = createDb({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolMax: 1 });
      try {
        print(io, { applied: await migrate(db) });
      } finally {
        await db.destroy();
      }
    },
  },
  {
    words: ['client', 'create'],
    usage: 'client create --name N [--client-id ID] [--grant-types a,b] [--scope "s1 s2"] [--auth-method M] [--resource-server URI]',
    help: 'Registers a client and prints it with its secret (shown once).',
    options: {
      name: { type: 'string' }, 'client-id': { type: 'string' }, 'grant-types': { type: 'string' }, scope: { type: 'string', multiple: true },
      'auth-method': { type: 'string' }, 'resource-server': { type: 'string' },
    },
    run: ({ values: v, io }) => withApi(io, async (api) => print(io, await api.call('POST', '/admin/api/clients', {
      ...(str(v['client-id']) ? { client_id: v['client-id'] } : {}),
      ...(str(v.name) ? { client_name: v.name } : {}),
      ...(str(v['grant-types']) ? { grant_types: str(v['grant-types'])!.split(',') } : {}),
      ...(list(v.scope) ? { scope: list(v.scope)!.join(' ') } : {}),
      ...(str(v['auth-method']) ? { token_endpoint_auth_method: v['auth-method'] } : {}),
      ...(str(v['resource-server']) ? { resource_server: v['resource-server'] } : {}),
    }))),
  },
  {
    words: ['client', 'list'],
    usage: 'client list',
    help: 'Lists the registered clients (the first 200).',
    run: ({ io }) => withApi(io, async (api) => print(io, await api.call('GET', '/admin/api/clients?limit=200'))),
  },
  {
    words: ['client', 'rotate-secret'],
    args: ['client_id'],
    usage: 'client rotate-secret <client_id>',
    help: 'Gives the client a new secret and prints it (shown once); the old one stops working.',
    run: ({ args: [id], io }) => withApi(io, async (api) => print(io, await api.call('POST', `/admin/api/clients/${enc(id!)}/secret`))),
  },
  {
    words: ['resource', 'create'],
    usage: 'resource create --identifier URI --name N [--scope name:sensitivity:operation ...] [--ttl S]',
    help: 'Registers a resource server (an API agents call) with its scopes, e.g. --scope expenses:read:internal:read.',
    options: { identifier: { type: 'string' }, name: { type: 'string' }, scope: { type: 'string', multiple: true }, ttl: { type: 'string' } },
    run: ({ values: v, io }) => withApi(io, async (api) => print(io, await api.call('POST', '/admin/api/resources', {
      identifier: v.identifier,
      name: v.name,
      scopes: scopesFrom(list(v.scope)),
      ...(str(v.ttl) ? { access_token_ttl: Number(v.ttl) } : {}),
    }))),
  },
  {
    words: ['issuer', 'add'],
    usage: 'issuer add --issuer URL (--jwks-uri URL | --jwks-file FILE) --audience A [--audience B ...] [--algorithms RS256,ES256] [--typ JWT ...] [--scope-claim scope|scp]',
    help: 'Trusts an external identity provider whose user tokens agents will present for exchange.',
    options: {
      issuer: { type: 'string' }, 'jwks-uri': { type: 'string' }, 'jwks-file': { type: 'string' }, audience: { type: 'string', multiple: true },
      algorithms: { type: 'string' }, typ: { type: 'string', multiple: true }, 'scope-claim': { type: 'string' },
    },
    run: ({ values: v, io }) => {
      let jwks: unknown;
      if (str(v['jwks-file'])) {
        const text = readNamedFile(str(v['jwks-file'])!, 'JWKS file');
        try { jwks = JSON.parse(text); } catch { throw new UsageError(`${v['jwks-file']} is not JSON`); }
      }
      return withApi(io, async (api) => print(io, await api.call('POST', '/admin/api/issuers', {
        issuer: v.issuer,
        ...(str(v['jwks-uri']) ? { jwks_uri: v['jwks-uri'] } : {}),
        ...(jwks !== undefined ? { jwks } : {}),
        audiences: v.audience,
        ...(str(v.algorithms) ? { algorithms: str(v.algorithms)!.split(',') } : {}),
        ...(list(v.typ) ? { typs: v.typ } : {}),
        ...(str(v['scope-claim']) ? { scope_claim: v['scope-claim'] } : {}),
      })));
    },
  },
  {
    words: ['admin', 'token', 'create'],
    usage: 'admin token create --name N [--role admin|reviewer|auditor] [--issuer URL --sub S]',
    help: 'Creates an admin credential and prints its token (shown once). Also the way back in after losing the\nbootstrap token: it works whether or not the server runs.\n  --issuer/--sub bind it to a person (required for a reviewer)',
    options: { name: { type: 'string' }, role: { type: 'string' }, issuer: { type: 'string' }, sub: { type: 'string' } },
    run: ({ values: v, io }) => {
      if ((v.issuer === undefined) !== (v.sub === undefined)) throw new UsageError('--issuer and --sub go together: the person the credential is bound to');
      return withApi(io, async (api) => print(io, await api.call('POST', '/admin/api/admins', {
        name: v.name,
        ...(v.role !== undefined ? { role: v.role } : {}),
        ...(v.issuer !== undefined ? { user: { issuer: v.issuer, sub: v.sub } } : {}),
      })));
    },
  },
  {
    words: ['admin', 'token', 'role'],
    args: ['admin_id', 'role'],
    usage: 'admin token role <admin_id> <admin|reviewer|auditor>',
    help: 'Changes a credential\'s role.',
    run: ({ args: [id, role], io }) => withApi(io, async (api) => print(io, await api.call('PATCH', `/admin/api/admins/${enc(id!)}`, { role }))),
  },
  {
    words: ['admin', 'token', 'revoke'],
    args: ['admin_id'],
    usage: 'admin token revoke <admin_id>',
    help: 'Revokes an admin credential (the last live admin-role credential cannot be revoked).',
    run: ({ args: [id], io }) => withApi(io, async (api) => {
      await api.call('DELETE', `/admin/api/admins/${enc(id!)}`);
      print(io, { revoked: id });
    }),
  },
  {
    words: ['keys', 'rotate'],
    usage: 'keys rotate [--overlap SECONDS]',
    help: 'Adds a signing key, published at once and signing after the overlap (default keys.rotation_overlap;\n  at least keys.min_rotation_overlap, 60 s, the time resource servers need to fetch the new key).',
    options: { overlap: { type: 'string' } },
    run: ({ values: v, io }) => {
      const overlap = wholeSeconds(str(v.overlap), '--overlap', 0, 7 * 86_400);
      return withApi(io, async (api) => print(io, await api.call('POST', '/admin/api/keys/rotate', overlap === undefined ? undefined : { overlap_seconds: overlap })));
    },
  },
  {
    words: ['keys', 'generate'],
    usage: 'keys generate [--ledger-key FILE]',
    help: 'Makes the secrets production needs and prints them as environment settings:\n  INTENTGATE_KEK (32 random bytes), ADMIN_TOKEN, and INTENTGATE_LEDGER_KEY, an Ed25519 key written to FILE\n  (default ./ledger-key.pem, mode 0600; an existing file is never overwritten). Keep the output secret.',
    options: { 'ledger-key': { type: 'string' } },
    async run({ values: v, io }) {
      const file = path.resolve(str(v['ledger-key']) ?? 'ledger-key.pem');
      if (existsSync(file)) throw new UsageError(`${file} exists; choose another --ledger-key FILE (an existing key is never overwritten)`);
      const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, await exportPKCS8(privateKey), { mode: 0o600, flag: 'wx' });
      const pub = `${file.replace(/\.pem$/, '')}.pub.pem`;
      if (!existsSync(pub)) writeFileSync(pub, await exportSPKI(publicKey), { flag: 'wx' });
      io.stdout.write([
        `INTENTGATE_KEK=${randomBytes(32).toString('base64')}`,
        `ADMIN_TOKEN=iga_${randomBytes(32).toString('base64url')}`,
        `INTENTGATE_LEDGER_KEY=${file}`,
        '',
      ].join('\n'));
      io.stderr.write(`wrote the ledger checkpoint key to ${file} and its public key (for verifiers: ledger verify --public-key) to ${pub}\n`);
    },
  },
  {
    words: ['dev', 'token'],
    usage: 'dev token --sub S [--scope "s1 s2"] [--ttl SECONDS] [--claim name=value ...]',
    help: 'Mints a user token from the development issuer (development mode only), for the development server\nrunning on DATA_DIR whatever its port (else for ISSUER, or http://localhost:$PORT).',
    options: { sub: { type: 'string' }, scope: { type: 'string', multiple: true }, ttl: { type: 'string' }, claim: { type: 'string', multiple: true } },
    async run({ values: v, io }) {
      const config = loadConfig('development', io.env);
      if (!config.devIssuer) throw new UsageError('the development issuer is switched off (development_issuer: false)');
      if (!str(v.sub)) throw new UsageError('--sub is required');
      const ttl = wholeSeconds(str(v.ttl), '--ttl', 1, 86_400) ?? 3600;
      const claims: Record<string, unknown> = {};
      for (const c of list(v.claim) ?? []) {
        const eq = c.indexOf('=');
        if (eq < 1) throw new UsageError(`--claim takes name=value, got ${c}`);
        const raw = c.slice(eq + 1);
        let value: unknown = raw;
        try { value = JSON.parse(raw); } catch { /* a plain string */ }
        claims[c.slice(0, eq)] = value;
      }
      // The running server's issuer, so its port need not be repeated here; an explicit ISSUER wins.
      const running = io.env.ISSUER ? undefined : readServerRecord(config.dataDir);
      const issuer = running?.issuer ?? config.issuer;
      io.stdout.write(`${await mintDevUserToken({ ...config, issuer }, str(v.sub)!, (list(v.scope) ?? []).join(' '), ttl, claims)}\n`);
    },
  },
  {
    words: ['policy', 'test'],
    args: ['fixtures.yaml'],
    usage: 'policy test <fixtures.yaml> [--policy FILE]',
    help: 'Runs policy expectation fixtures against a policy (default: the configured one); exit 1 on a mismatch.',
    options: { policy: { type: 'string' } },
    async run({ values: v, args: [fixtures], io }) {
      const config = loadConfig('development', io.env);
      const policyFile = str(v.policy) ?? config.policyFile;
      const policy = compilePolicy(parsePolicyDocument(readNamedFile(policyFile, 'policy file')), policyFile);
      const report = runFixtures(policy, readNamedFile(fixtures!, 'fixtures file'));
      for (const f of report.failed) {
        io.stdout.write(`FAIL ${f.name}\n  expected ${JSON.stringify(f.expected)}\n  actual   ${JSON.stringify({ outcome: f.actual.outcome, granted_scopes: f.actual.grantedScopes, reasons: f.actual.reasons, ttl: f.actual.ttl, matched_rules: f.actual.matchedRules })}\n`);
      }
      io.stdout.write(`${report.passed} passed, ${report.failed.length} failed\n`);
      return report.failed.length ? 1 : 0;
    },
  },
  {
    words: ['policy', 'replay'],
    usage: 'policy replay --policy DRAFT.yaml [--since 7d] [--progress]',
    help: 'Re-decides recorded exchanges under a draft policy and lists every decision that would change.',
    options: { policy: { type: 'string' }, since: { type: 'string' }, ...PROGRESS },
    run({ values: v, io }) {
      if (!str(v.policy)) throw new UsageError('--policy DRAFT.yaml is required');
      const document = readNamedFile(str(v.policy)!, 'policy file');
      return withApi(io, async (api) => {
        const p = progress(io.stderr, 'policy replay', v.progress === true);
        p.update('replaying');
        let report: ReplayReport;
        try {
          report = await api.call<ReplayReport>('POST', '/admin/api/policies/replay', { document, ...(str(v.since) ? { since: v.since } : {}) });
        } finally {
          p.done();
        }
        for (const c of report.changed) {
          io.stdout.write(`#${c.seq} ${c.at} ${c.client_id} ${JSON.stringify(c.user)}: ${c.original.decision} -> ${c.replayed.decision} (${c.replayed.reasons.join(', ') || c.replayed.granted_scope.join(' ')})\n`);
        }
        io.stdout.write(`${report.examined} examined, ${report.changed.length} would change, ${report.unchanged} unchanged, ${report.skipped} skipped\n`);
      });
    },
  },
  {
    words: ['ledger', 'verify'],
    usage: 'ledger verify [--anchors DIR] [--public-key FILE] [--progress]',
    help: 'Checks the whole ledger (chain, checkpoints, anchors); exit 1 naming the first bad entry.\n  --anchors DIR       anchored checkpoints to check (default INTENTGATE_ANCHOR_DIR); needs the database itself\n  --public-key FILE   verify checkpoints with this Ed25519 public key (JWK or SPKI PEM) instead of the server\'s',
    options: { anchors: { type: 'string' }, 'public-key': { type: 'string' }, ...PROGRESS },
    async run({ values: v, io }) {
      const publicKey = str(v['public-key']) ? readNamedFile(str(v['public-key'])!, 'public key') : undefined;
      const base = loadConfig('development', io.env);
      const anchors = str(v.anchors);
      if (anchors !== undefined && !existsSync(anchors)) throw new UsageError(`cannot read anchors directory ${anchors}: no such directory`);
      const config = anchors ? { ...base, ledger: { ...base.ledger, anchorDir: path.resolve(anchors) } } : base;
      const { connect } = await import('./connect.ts');
      const conn = await connect(config, io.env);
      try {
        if (anchors && conn.via === 'server' && path.resolve(anchors) !== base.ledger.anchorDir) {
          throw new UsageError('--anchors names another directory than the running server\'s; stop the server (or use PostgreSQL) to check those');
        }
        const started = Date.now();
        const p = progress(io.stderr, 'ledger verify', v.progress === true);
        let report: VerifyReport | undefined;
        try {
          await conn.api.lines('POST', '/admin/api/ledger/verify', publicKey ? { public_key: publicKey } : undefined, (line) => {
            const msg = JSON.parse(line) as { progress?: { entries: number }; report?: VerifyReport; error_description?: string };
            if (msg.progress) p.update(`${msg.progress.entries} entries checked`);
            else if (msg.report) report = msg.report;
            else throw new UsageError(`ledger verification could not finish: ${msg.error_description ?? line}`);
          });
        } finally {
          p.done();
        }
        if (!report) throw new UsageError('ledger verification ended without a report');
        const secs = ((Date.now() - started) / 1000).toFixed(1);
        if (!report.ok) {
          io.stdout.write(`ledger verification FAILED at entry ${report.problem!.seq}: ${report.problem!.message}\n`);
          return 1;
        }
        io.stdout.write(`ledger OK: ${report.entries} entries, head ${report.head_hash}, ${report.checkpoints} checkpoints and ${report.anchors} anchors checked in ${secs} s\n`);
      } finally {
        await conn.close();
      }
    },
  },
  {
    words: ['ledger', 'export'],
    usage: 'ledger export [--since 7d] [--progress]',
    help: 'Writes the ledger as NDJSON on stdout, oldest first (--since: 7d, 12h, 30m or an ISO 8601 date-time).',
    options: { since: { type: 'string' }, ...PROGRESS },
    run: ({ values: v, io }) => withApi(io, async (api) => {
      const p = progress(io.stderr, 'ledger export', v.progress === true);
      let n = 0;
      try {
        await api.lines('GET', `/admin/api/ledger/export${str(v.since) ? `?since=${enc(str(v.since)!)}` : ''}`, undefined, async (line) => {
          n++;
          if (!io.stdout.write(`${line}\n`)) await new Promise((r) => io.stdout.once('drain', r));
          if (n % 1000 === 0) p.update(`${n} entries`);
        });
        p.update(`${n} entries`);
      } finally {
        p.done();
      }
    }),
  },
  {
    words: ['apply'],
    args: ['file'],
    usage: 'apply <file.yaml> [--dry-run]',
    help: 'Declares issuers, resources, clients, admins and the policy from a YAML file, idempotently: creates what\nis missing, updates what differs, and says what it changed (a second run changes nothing).\n  --dry-run   say what would change, change nothing',
    options: { 'dry-run': { type: 'boolean' } },
    run({ values: v, args: [file], io }) {
      const text = readNamedFile(file!, 'file');
      return withApi(io, async (api) => (await import('./apply.ts')).applyFile(api, text, path.dirname(path.resolve(file!)), { dryRun: v['dry-run'] === true, out: io.stdout }));
    },
  },
];
