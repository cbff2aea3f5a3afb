// `npm run bench`: intentgate against its peer, a plain oidc-provider issuing client_credentials JWTs with
// no database (bench/peer.ts), each server in its own process, measured in the same run at 64 connections.
// The phases run in rounds, each round in a rotated order, so no phase always runs first or last, and every
// figure is reported as a ratio to the peer's slice of the same round. See bench/RESULTS.md.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon, { type Instance, type Options, type RawRequest, type Result } from 'autocannon';
import { decodeJwt, type CryptoKey } from 'jose';
import {
  adminClient, basicAuth, historyPolicy, clientCredentialsBody, createDatabase, dpopProofs, EXPENSES, exchangeBody, POLICY_FILE, register, serverVersion, userTokens,
  type AdminApi, type BenchDatabase, type Registered,
} from './fixture.ts';
import type { Usage } from './child.ts';
import { profileMarkdown, summarise } from './profile.ts';
import { ServerProcess } from './server_process.ts';
import { appendResults, consoleReport, failureRate, type PhaseFigures, type Slice } from './report.ts';

const CONNECTIONS = 64;
const USERS = 2000;
const MAX_FAILURE_RATE = 0.01;
// Proofs are single-use: more than the exchange endpoint can take in a slice.
const PROOFS_PER_SECOND = 2500;
const RESULTS_FILE = path.join(import.meta.dirname, 'RESULTS.md');
const ROTATE_MODULE = path.join(import.meta.dirname, 'rotate_body.cts');

function numberFromEnv(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) throw new Error(`${name} must be a number >= ${min}, got ${raw}`);
  return n;
}

const serverUrl = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
const seconds = numberFromEnv('BENCH_SECONDS', 5, 1);
const rounds = Math.floor(numberFromEnv('BENCH_ROUNDS', 3, 1));
const warmupSeconds = numberFromEnv('BENCH_WARMUP_SECONDS', 3, 0);
// autocannon in a worker thread by default, so the load generator's own event loop is not the bottleneck.
const workers = Math.floor(numberFromEnv('BENCH_WORKERS', 1, 0));
const withPglite = process.env.BENCH_PGLITE !== '0';
// Phases profiled after the measured rounds, in a window of their own (profiling slows a server down).
const profiled = (process.env.BENCH_PROFILE ?? 'exchange').split(',').map((s) => s.trim()).filter((s) => s && s !== 'none');

// Node/V8 flags for the intentgate processes only (e.g. heap sizing), to measure their effect against the same peer.
const serverFlags = (process.env.BENCH_SERVER_FLAGS ?? '').split(' ').filter(Boolean);

const say = (line: string): void => void process.stderr.write(`${line}\n`);

// ---------------------------------------------------------------------------------------------------
// Server processes

let database: BenchDatabase | undefined;
let scratch: string | undefined;
let current: Instance | undefined;
const servers: ServerProcess[] = [];

async function cleanup(): Promise<void> {
  if (current) {
    current.stop();
    current = undefined;
    await sleep(1000);
  }
  for (const s of servers.splice(0)) {
    await s.stop().catch((err: Error) => say(`bench: could not stop ${s.name}: ${err.message}`));
  }
  if (database) {
    await database.drop().then(() => say(`bench: dropped database ${database!.name}`), (err: Error) => say(`bench: could not drop the database: ${err.message}`));
    database = undefined;
  }
  if (scratch) rmSync(scratch, { recursive: true, force: true });
  scratch = undefined;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    say(`bench: ${signal}, cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

function cannon(opts: Options): Promise<Result> {
  return new Promise((resolve, reject) => {
    current = autocannon(opts, (err, result) => {
      current = undefined;
      if (err) reject(err);
      else resolve(result);
    });
  });
}

async function expectOk(res: Response, what: string): Promise<Record<string, unknown>> {
  const text = await res.text();
  if (res.status !== 200) throw new Error(`preflight ${what}: HTTP ${res.status} ${text}`);
  return JSON.parse(text) as Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------------
// Phases

interface Phase {
  key: string;
  label: string;
  server: ServerProcess;
  /** The issued_tokens grant_type each 2xx records, to cross-check autocannon's count. */
  grantType?: string;
  /** Builds the requests of one slice (fresh proofs, fresh tokens to introspect, the right policy). */
  prepare(seconds: number): Promise<Options>;
}

const form = 'application/x-www-form-urlencoded';

/** One request template whose body (and DPoP header) changes each request, read from files. */
function rotating(url: string, headers: Record<string, string>, bodiesFile: string, proofsFile?: string): Options {
  process.env.IG_BENCH_BODIES = bodiesFile; // read by rotate_body.cts in the worker thread
  if (proofsFile) process.env.IG_BENCH_PROOFS = proofsFile;
  else delete process.env.IG_BENCH_PROOFS;
  let setupRequest: string | ((req: RawRequest) => RawRequest) = ROTATE_MODULE;
  if (workers === 0) {
    const lines = (f: string) => readFileSync(f, 'utf8').split('\n').filter(Boolean);
    const bodies = lines(bodiesFile);
    const proofs = proofsFile ? lines(proofsFile) : undefined;
    let next = 0;
    setupRequest = (req) => {
      req.body = bodies[next % bodies.length];
      if (proofs) req.headers = { ...req.headers, dpop: proofs[next] ?? '' };
      next++;
      return req;
    };
  }
  const { pathname } = new URL(url);
  return { url, method: 'POST', headers, requests: [{ method: 'POST', path: pathname, headers, setupRequest }] };
}

interface IntentgateSide { api: AdminApi; proc: ServerProcess; reg: Registered; bodiesFile: string; bodies: string[] }

async function intentgateSide(proc: ServerProcess, tag: string, users: number): Promise<IntentgateSide> {
  const api = adminClient(String(proc.ready.url), String(proc.ready.adminToken));
  const reg = await register(api);
  const started = Date.now();
  const bodies = (await userTokens(reg.idpKey as CryptoKey, users)).map((u) => exchangeBody(u.token));
  say(`bench: ${tag}: signed ${bodies.length} user tokens and built their request bodies in ${Date.now() - started} ms`);
  const bodiesFile = path.join(scratch!, `bodies-${tag}.txt`);
  writeFileSync(bodiesFile, `${bodies.join('\n')}\n`);
  return { api, proc, reg, bodiesFile, bodies };
}

async function preflight(side: IntentgateSide, peer: ServerProcess): Promise<void> {
  const tokenUrl = `${side.api.url}/token`;
  const exHeaders = { 'content-type': form, authorization: basicAuth(side.reg.agent) };
  const cc = await expectOk(await fetch(tokenUrl, { method: 'POST', headers: { 'content-type': form, authorization: basicAuth(side.reg.batch) }, body: clientCredentialsBody() }), 'client_credentials');
  const ccClaims = decodeJwt(String(cc.access_token));
  if (cc.scope !== 'expenses:read' || ccClaims.aud !== EXPENSES || ccClaims.client_id !== side.reg.batch[0]) throw new Error(`preflight client_credentials: unexpected answer ${JSON.stringify(cc)}`);
  for (const i of [0, 1, side.bodies.length - 1]) {
    const ex = await expectOk(await fetch(tokenUrl, { method: 'POST', headers: exHeaders, body: side.bodies[i] }), 'token exchange');
    const claims = decodeJwt(String(ex.access_token));
    if (ex.scope !== 'expenses:approve' || claims.aud !== EXPENSES || claims.client_id !== side.reg.agent[0] || !Array.isArray(ex.authorization_details)) {
      throw new Error(`preflight token exchange: unexpected answer ${JSON.stringify(ex)}`);
    }
    const intro = await expectOk(await fetch(`${side.api.url}/token/introspection`, {
      method: 'POST', headers: { 'content-type': form, authorization: basicAuth(side.reg.resourceServer) }, body: `token=${ex.access_token}`,
    }), 'introspection');
    if (intro.active !== true || intro.sub !== claims.sub) throw new Error(`preflight introspection: unexpected answer ${JSON.stringify(intro)}`);
  }
  const [proof] = await dpopProofs(tokenUrl, 1);
  const bound = await expectOk(await fetch(tokenUrl, { method: 'POST', headers: { ...exHeaders, dpop: proof! }, body: side.bodies[2] }), 'token exchange with DPoP');
  if (bound.token_type !== 'DPoP' || !(decodeJwt(String(bound.access_token)).cnf as { jkt?: string } | undefined)?.jkt) {
    throw new Error(`preflight token exchange with DPoP: unexpected answer ${JSON.stringify(bound)}`);
  }
  const peerUrl = String(peer.ready.url);
  const p = await expectOk(await fetch(`${peerUrl}/token`, { method: 'POST', headers: { 'content-type': form, authorization: basicAuth(peer.ready.client as [string, string]) }, body: clientCredentialsBody() }), 'peer client_credentials');
  if (decodeJwt(String(p.access_token)).aud !== EXPENSES) throw new Error(`preflight peer: unexpected answer ${JSON.stringify(p)}`);
}

// ---------------------------------------------------------------------------------------------------

async function measureSlice(phase: Phase, duration: number): Promise<Slice> {
  const opts = await phase.prepare(duration);
  const recorded = async () => (phase.grantType ? (await phase.server.call<Record<string, number>>('recorded'))[phase.grantType] ?? 0 : 0);
  const recordedBefore = await recorded();
  const before = await phase.server.call<Usage>('usage');
  let rssMax = before.rss;
  let heapMax = before.heapTotal;
  const sampler = setInterval(() => {
    phase.server.call<Usage>('usage').then((u) => {
      rssMax = Math.max(rssMax, u.rss);
      heapMax = Math.max(heapMax, u.heapTotal);
    }, () => undefined);
  }, 250);
  const load = os.loadavg()[0] ?? 0;
  let result: Result;
  try {
    result = await cannon({ ...opts, connections: CONNECTIONS, timeout: 10, duration, title: phase.label, ...(workers > 0 ? { workers } : {}) });
  } finally {
    clearInterval(sampler);
  }
  const after = await phase.server.call<Usage>('usage');
  rssMax = Math.max(rssMax, after.rss);
  // Requests in flight when autocannon stops may still complete; let them land before counting.
  await sleep(400);
  return {
    rps: result.requests.mean,
    p50: result.latency.p50,
    p99: result.latency.p99,
    completed: result.requests.total,
    ok: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    statusCodes: Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, s]) => [code, s.count])),
    serverCpuMsPerRequest: (after.cpuMicros - before.cpuMicros) / 1000 / Math.max(1, result.requests.total),
    rssMaxMb: rssMax / 1024 / 1024,
    heapMaxMb: heapMax / 1024 / 1024,
    recorded: phase.grantType ? (await recorded()) - recordedBefore : undefined,
    loadBefore: load,
  };
}

async function main(): Promise<number> {
  scratch = mkdtempSync(path.join(os.tmpdir(), 'intentgate-bench-'));
  database = await createDatabase(serverUrl);
  say(`bench: created database ${database.name}`);
  const postgres = await serverVersion(serverUrl);

  const [peer, ig, lite] = await Promise.all([
    ServerProcess.start('peer', 'peer.ts', {}),
    ServerProcess.start('intentgate', 'serve.ts', { BENCH_DATABASE_URL: database.url }, serverFlags),
    withPglite ? ServerProcess.start('intentgate (PGlite)', 'serve.ts', { BENCH_DATABASE_URL: '' }, serverFlags) : Promise.resolve(undefined),
  ]);
  servers.push(peer, ig, ...(lite ? [lite] : []));
  say(`bench: peer on ${String(peer.ready.url)}, intentgate on ${String(ig.ready.url)}${lite ? `, intentgate on PGlite on ${String(lite.ready.url)}` : ''}`);

  const pg = await intentgateSide(ig, 'pg', USERS);
  const pgl = lite ? await intentgateSide(lite, 'pglite', USERS) : undefined;
  await preflight(pg, peer);
  if (pgl) await preflight(pgl, peer);
  say('bench: preflight requests answered as expected');

  // The PostgreSQL server's policy: the bench policy, or the same plus history rules; switched by publishing.
  const plainPolicy = readFileSync(POLICY_FILE, 'utf8');
  let policyInForce: 'plain' | 'history' = 'plain';
  const usePolicy = async (want: 'plain' | 'history') => {
    if (policyInForce === want) return;
    const res = await pg.api.admin('POST', '/admin/api/policies', { document: want === 'plain' ? plainPolicy : historyPolicy(), source: `bench: ${want}` });
    if (res.status !== 201) throw new Error(`publishing the ${want} policy: HTTP ${res.status} ${await res.text()}`);
    policyInForce = want;
  };
  const sliceFile = (() => { let n = 0; return (tag: string) => path.join(scratch!, `${tag}-${n++}.txt`); })();
  const exchange = (side: IntentgateSide, policy?: 'plain' | 'history', dpop = false) => async (s: number): Promise<Options> => {
    if (policy) await usePolicy(policy);
    const tokenUrl = `${side.api.url}/token`;
    let proofsFile: string | undefined;
    if (dpop) {
      proofsFile = sliceFile('proofs');
      writeFileSync(proofsFile, `${(await dpopProofs(tokenUrl, Math.ceil(s * PROOFS_PER_SECOND))).join('\n')}\n`);
    }
    return rotating(tokenUrl, { 'content-type': form, authorization: basicAuth(side.reg.agent) }, side.bodiesFile, proofsFile);
  };

  const phases: Phase[] = [
    {
      key: 'peer', label: 'peer: oidc-provider client_credentials', server: peer,
      prepare: async () => ({ url: `${String(peer.ready.url)}/token`, method: 'POST', headers: { 'content-type': form, authorization: basicAuth(peer.ready.client as [string, string]) }, body: clientCredentialsBody() }),
    },
    {
      key: 'cc', label: 'intentgate client_credentials', server: ig, grantType: 'client_credentials',
      prepare: async () => ({ url: `${pg.api.url}/token`, method: 'POST', headers: { 'content-type': form, authorization: basicAuth(pg.reg.batch) }, body: clientCredentialsBody() }),
    },
    { key: 'exchange', label: 'token exchange', server: ig, grantType: 'token-exchange', prepare: exchange(pg, 'plain') },
    { key: 'dpop', label: 'token exchange with DPoP', server: ig, grantType: 'token-exchange', prepare: exchange(pg, 'plain', true) },
    { key: 'history', label: 'token exchange, history rules', server: ig, grantType: 'token-exchange', prepare: exchange(pg, 'history') },
    {
      key: 'introspection', label: 'introspection by a resource server', server: ig,
      // Fresh tokens each slice (exchange tokens live 120 s under the bench policy), introspected in turn.
      prepare: async () => {
        const tokens: string[] = [];
        for (let i = 0; i < 64; i++) {
          const ex = await expectOk(await fetch(`${pg.api.url}/token`, { method: 'POST', headers: { 'content-type': form, authorization: basicAuth(pg.reg.agent) }, body: pg.bodies[i * 7] }), 'token to introspect');
          tokens.push(`token=${String(ex.access_token)}`);
        }
        const file = sliceFile('introspect');
        writeFileSync(file, `${tokens.join('\n')}\n`);
        return rotating(`${pg.api.url}/token/introspection`, { 'content-type': form, authorization: basicAuth(pg.reg.resourceServer) }, file);
      },
    },
    ...(pgl ? [{ key: 'pglite', label: 'token exchange on PGlite', server: pgl.proc, grantType: 'token-exchange', prepare: exchange(pgl) }] : []),
  ];

  const loadBefore = os.loadavg()[0] ?? 0;
  if (warmupSeconds > 0) {
    for (const phase of phases) {
      say(`bench: warming up ${phase.label} (${warmupSeconds} s)`);
      const opts = await phase.prepare(warmupSeconds);
      await cannon({ ...opts, connections: CONNECTIONS, timeout: 10, duration: warmupSeconds, ...(workers > 0 ? { workers } : {}) });
      await sleep(300);
    }
  }

  const slices = new Map<string, Slice[]>(phases.map((p) => [p.key, []]));
  const orders: string[][] = [];
  const step = Math.max(1, Math.ceil(phases.length / rounds));
  for (let r = 0; r < rounds; r++) {
    const offset = (r * step) % phases.length;
    const order = [...phases.slice(offset), ...phases.slice(0, offset)];
    orders.push(order.map((p) => p.key));
    for (const phase of order) {
      say(`bench: round ${r + 1}/${rounds}: ${phase.label} (${seconds} s, ${CONNECTIONS} connections)`);
      slices.get(phase.key)!.push(await measureSlice(phase, seconds));
    }
  }

  const figures: PhaseFigures[] = phases.map((p) => ({ key: p.key, label: p.label, slices: slices.get(p.key)! }));
  const profiles: Array<{ key: string; label: string; markdown: string }> = [];
  for (const key of profiled) {
    const phase = phases.find((p) => p.key === key);
    if (!phase) throw new Error(`BENCH_PROFILE: no phase ${key} (phases: ${phases.map((p) => p.key).join(', ')})`);
    const file = path.join(scratch, `${key}.cpuprofile`);
    say(`bench: profiling ${phase.label} (${seconds} s)`);
    const opts = await phase.prepare(seconds);
    await phase.server.call('profile-start');
    const result = await cannon({ ...opts, connections: CONNECTIONS, timeout: 10, duration: seconds, ...(workers > 0 ? { workers } : {}) });
    await phase.server.call('profile-stop', file);
    const summary = summarise(JSON.parse(readFileSync(file, 'utf8')), 30);
    profiles.push({ key, label: phase.label, markdown: profileMarkdown(summary, result.requests.total) });
    if (process.env.BENCH_KEEP_PROFILES) {
      const kept = path.join(process.env.BENCH_KEEP_PROFILES, `${key}-${Date.now()}.cpuprofile`);
      writeFileSync(kept, readFileSync(file));
      say(`bench: kept the profile as ${kept}`);
    }
  }

  const distinct = await ig.call<number>('distinctSubjects');
  const info = {
    date: new Date(),
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown CPU',
    node: process.version,
    postgres,
    connections: CONNECTIONS,
    seconds,
    rounds,
    warmupSeconds,
    loadGenerator: workers > 0 ? `in ${workers} worker thread${workers > 1 ? 's' : ''}` : 'on the bench thread',
    users: USERS,
    distinctUsers: distinct,
    loadBefore,
    orders,
  };
  process.stdout.write(`\n${consoleReport(info, figures)}\n\n`);
  appendResults(RESULTS_FILE, info, figures, profiles);
  say(`bench: appended to ${path.relative(process.cwd(), RESULTS_FILE)}`);

  let failed = false;
  for (const f of figures) {
    for (const s of f.slices) {
      const rate = failureRate(s);
      if (s.ok === 0 || rate > MAX_FAILURE_RATE) {
        say(`bench: FAILED: ${f.label}: ${(rate * 100).toFixed(2)}% of requests in a slice were not 2xx or failed (limit ${MAX_FAILURE_RATE * 100}%)`);
        failed = true;
      }
      if (s.recorded !== undefined && s.recorded < s.ok) {
        say(`bench: FAILED: ${f.label}: autocannon saw ${s.ok} 2xx but the server recorded only ${s.recorded} tokens`);
        failed = true;
      }
    }
  }
  return failed ? 1 : 0;
}

let code = 1;
try {
  code = await main();
} catch (err) {
  say(`bench: ${(err as Error).stack ?? String(err)}`);
  code = 1;
} finally {
  await cleanup();
}
process.exit(code);
