// `npm run bench`: client_credentials (baseline) against token exchange, and token exchange with DPoP
// against token exchange without, in the same run, on a fresh PostgreSQL database. See bench/RESULTS.md for what is measured and the figures so far.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon, { type Instance, type Options, type RawRequest, type Result } from 'autocannon';
import { decodeJwt } from 'jose';
import {
  basicAuth, historyPolicy, clientCredentialsBody, createDatabase, dpopProofs, EXPENSES, exchangeBody, register, serverVersion, startBenchServer, userTokens,
  type BenchDatabase, type BenchServer,
} from './fixture.ts';
import { appendResults, consoleTable, failureRate, figures, type CpuShare, type Figures, type Ratio } from './report.ts';

const CONNECTIONS = 64;
const USERS = 2000;
const MAX_FAILURE_RATE = 0.01;
// Proofs are single-use: more than the exchange endpoint can take in a warm-up or a measured run.
const PROOFS_PER_SECOND = 1500;
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
const seconds = numberFromEnv('BENCH_SECONDS', 10, 1);
const warmupSeconds = numberFromEnv('BENCH_WARMUP_SECONDS', 3, 0);
// autocannon in a worker thread by default, so the load generator does not share the server's event loop.
const workers = Math.floor(numberFromEnv('BENCH_WORKERS', 1, 0));

const say = (line: string): void => void process.stderr.write(`${line}\n`);

let database: BenchDatabase | undefined;
let server: BenchServer | undefined;
let scratch: string | undefined;
let current: Instance | undefined;

async function cleanup(): Promise<void> {
  if (current) {
    // Interrupted mid-run: let the requests already inside the server finish before its pool closes.
    current.stop();
    current = undefined;
    await sleep(1000);
  }
  const steps: Array<[string, (() => Promise<void>) | undefined]> = [
    ['close the server', server ? () => server!.close() : undefined],
    ['drop the database', database ? () => database!.drop() : undefined],
  ];
  for (const [what, step] of steps) {
    if (!step) continue;
    try {
      await step();
    } catch (err) {
      say(`bench: could not ${what}: ${(err as Error).message}`);
    }
  }
  server = undefined;
  if (database) say(`bench: dropped database ${database.name}`);
  database = undefined;
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

/** Tokens the server recorded, by grant type (issued_tokens is written before any token is returned). */
async function recordedTokens(s: BenchServer): Promise<Record<string, number>> {
  const rows = await s.running.db('issued_tokens').select('grant_type').count({ n: '*' }).groupBy('grant_type') as Array<{ grant_type: string; n: number | string }>;
  return Object.fromEntries(rows.map((r) => [r.grant_type, Number(r.n)]));
}

interface Measured { figures: Figures; recorded: number }

/** Starts counting CPU time; the returned function gives the shares used since (see CpuShare). */
function cpuMeter(): () => CpuShare {
  const busy = () => os.cpus().reduce((acc, c) => {
    const { user, nice, sys, irq, idle } = c.times;
    return { busy: acc.busy + user + nice + sys + irq, total: acc.total + user + nice + sys + irq + idle };
  }, { busy: 0, total: 0 });
  const startMachine = busy();
  const startProcess = process.cpuUsage();
  const startWall = process.hrtime.bigint();
  return () => {
    const m = busy();
    const used = process.cpuUsage(startProcess);
    const wallMicros = Number(process.hrtime.bigint() - startWall) / 1000;
    const cores = os.cpus().length;
    return {
      process: (used.user + used.system) / (wallMicros * cores),
      machine: (m.busy - startMachine.busy) / Math.max(1, m.total - startMachine.total),
      processMs: (used.user + used.system) / 1000,
    };
  };
}

/** A warm-up, then the measured run; `grantType` is the issued_tokens label used to cross-check the 2xx count. */
async function measure(s: BenchServer, label: string, grantType: string, opts: Options, before?: (phase: 'warm-up' | 'measured') => Promise<void>): Promise<Measured> {
  if (warmupSeconds > 0) {
    await before?.('warm-up');
    say(`bench: warming up ${label} (${warmupSeconds} s)`);
    await cannon({ ...opts, duration: warmupSeconds });
    await sleep(300);
  }
  await before?.('measured');
  const recordedBefore = (await recordedTokens(s))[grantType] ?? 0;
  say(`bench: measuring ${label} (${seconds} s, ${CONNECTIONS} connections)`);
  const cpu = cpuMeter();
  const result = await cannon({ ...opts, duration: seconds, title: label });
  const share = cpu();
  // Requests still in flight when autocannon stops may complete afterwards; let them land before counting.
  await sleep(500);
  const after = (await recordedTokens(s))[grantType] ?? 0;
  return { figures: figures({ label, result, cpu: share }), recorded: after - recordedBefore };
}

async function expectOk(res: Response, what: string): Promise<Record<string, unknown>> {
  const text = await res.text();
  if (res.status !== 200) throw new Error(`preflight ${what}: HTTP ${res.status} ${text}`);
  return JSON.parse(text) as Record<string, unknown>;
}

async function main(): Promise<number> {
  database = await createDatabase(serverUrl);
  say(`bench: created database ${database.name}`);
  const postgres = await serverVersion(serverUrl);
  server = await startBenchServer(database.url);
  say(`bench: intentgate listening on ${server.url}`);
  const reg = await register(server);

  const started = Date.now();
  const users = await userTokens(reg.idpKey, USERS);
  const bodies = users.map((u) => exchangeBody(u.token));
  say(`bench: signed ${users.length} user tokens and built their request bodies in ${Date.now() - started} ms`);
  scratch = mkdtempSync(path.join(os.tmpdir(), 'intentgate-bench-bodies-'));
  const bodiesFile = path.join(scratch, 'bodies.txt');
  writeFileSync(bodiesFile, `${bodies.join('\n')}\n`);
  process.env.IG_BENCH_BODIES = bodiesFile; // read by rotate_body.cts in the worker threads

  const tokenUrl = `${server.url}/token`;
  const form = 'application/x-www-form-urlencoded';
  const ccBody = clientCredentialsBody();
  const ccHeaders = { 'content-type': form, authorization: basicAuth(reg.batch) };
  const exHeaders = { 'content-type': form, authorization: basicAuth(reg.agent) };

  // Preflight: each kind of request once by hand, with its answer checked, before anything is timed.
  const cc = await expectOk(await fetch(tokenUrl, { method: 'POST', headers: ccHeaders, body: ccBody }), 'client_credentials');
  const ccClaims = decodeJwt(String(cc.access_token));
  if (cc.scope !== 'expenses:read' || ccClaims.aud !== EXPENSES || ccClaims.client_id !== reg.batch[0]) {
    throw new Error(`preflight client_credentials: unexpected answer ${JSON.stringify(cc)}`);
  }
  for (const i of [0, 1, USERS - 1]) {
    const ex = await expectOk(await fetch(tokenUrl, { method: 'POST', headers: exHeaders, body: bodies[i] }), `token exchange for ${users[i]!.sub}`);
    const claims = decodeJwt(String(ex.access_token));
    if (ex.scope !== 'expenses:approve' || claims.sub !== users[i]!.sub || claims.aud !== EXPENSES || claims.client_id !== reg.agent[0]
      || !Array.isArray(ex.authorization_details)) {
      throw new Error(`preflight token exchange: unexpected answer ${JSON.stringify(ex)}`);
    }
  }
  const [preflightProof] = await dpopProofs(tokenUrl, 1);
  const bound = await expectOk(await fetch(tokenUrl, { method: 'POST', headers: { ...exHeaders, dpop: preflightProof! }, body: bodies[2] }), 'token exchange with DPoP');
  if (bound.token_type !== 'DPoP' || !(decodeJwt(String(bound.access_token)).cnf as { jkt?: string } | undefined)?.jkt) {
    throw new Error(`preflight token exchange with DPoP: unexpected answer ${JSON.stringify(bound)}`);
  }
  say('bench: preflight requests answered as expected');

  const loadBefore = os.loadavg()[0] ?? 0;
  const common: Options = { url: tokenUrl, method: 'POST', connections: CONNECTIONS, timeout: 10, ...(workers > 0 ? { workers } : {}) };
  const baseline = await measure(server, 'client_credentials (baseline)', 'client_credentials', {
    ...common, headers: ccHeaders, body: ccBody,
  });
  let nextBody = 0;
  let inThreadProofs: string[] | undefined;
  const rotateInThread = (req: RawRequest): RawRequest => {
    if (inThreadProofs) req.headers = { ...req.headers, dpop: inThreadProofs[nextBody] ?? '' };
    req.body = bodies[nextBody++ % bodies.length];
    return req;
  };
  const exchangeOptions: Options = {
    ...common,
    headers: exHeaders,
    body: bodies[0],
    requests: [{ method: 'POST', path: '/token', headers: exHeaders, setupRequest: workers > 0 ? ROTATE_MODULE : rotateInThread }],
  };
  const exchange = await measure(server, 'token exchange', 'token-exchange', exchangeOptions);

  // The same exchanges, each with a fresh DPoP proof: the proof check, its replay record and the binding.
  // Proofs for the warm-up and for the measured run go in separate files: each autocannon run starts its
  // worker afresh, at the first line.
  const proofFiles = await Promise.all([warmupSeconds, seconds].map(async (s, i) => {
    const file = path.join(scratch!, `proofs-${i}.txt`);
    writeFileSync(file, `${(await dpopProofs(tokenUrl, Math.max(1, s) * PROOFS_PER_SECOND)).join('\n')}\n`);
    return file;
  }));
  const dpop = await measure(server, 'token exchange with DPoP', 'token-exchange', exchangeOptions, async (phase) => {
    process.env.IG_BENCH_PROOFS = proofFiles[phase === 'warm-up' ? 0 : 1];
    if (workers === 0) {
      const { readFileSync } = await import('node:fs');
      inThreadProofs = readFileSync(process.env.IG_BENCH_PROOFS!, 'utf8').split('\n').filter(Boolean);
      nextBody = 0;
    }
  });
  delete process.env.IG_BENCH_PROOFS;

  // The same exchanges under a policy that reads history (separation of duties): each user's decisions are
  // serialised from the history read until the record commits, so this measures the per-user lock's cost.
  const published = await server.admin('POST', '/admin/api/policies', { document: historyPolicy(), source: 'bench: history rules' });
  if (published.status !== 201) throw new Error(`publishing the history policy: HTTP ${published.status} ${await published.text()}`);
  const historyCheck = await expectOk(await fetch(tokenUrl, { method: 'POST', headers: exHeaders, body: bodies[3] }), 'token exchange under history rules');
  if (historyCheck.scope !== 'expenses:approve') throw new Error(`preflight history: unexpected answer ${JSON.stringify(historyCheck)}`);
  const history = await measure(server, 'token exchange, history rules', 'token-exchange', exchangeOptions);

  const rows = [baseline.figures, exchange.figures, dpop.figures, history.figures];
  const ratios: Ratio[] = [
    { label: 'exchange/baseline', of: exchange.figures, to: baseline.figures },
    { label: 'exchange with DPoP/exchange', of: dpop.figures, to: exchange.figures },
    { label: 'exchange with history rules/exchange', of: history.figures, to: exchange.figures },
  ];
  process.stdout.write(`\n${consoleTable(rows, ratios)}\n\n`);
  for (const m of [baseline, exchange, dpop, history]) {
    say(`bench: ${m.figures.label}: autocannon saw ${m.figures.ok} 2xx; the server recorded ${m.recorded} tokens in the same window`
      + ` (up to ${CONNECTIONS} more are expected: requests in flight when autocannon stops still complete)`);
  }
  const distinct = await server.running.db('issued_tokens').where({ grant_type: 'token-exchange' }).countDistinct({ n: 'subject' }).first() as { n: number | string };
  say(`bench: token exchanges were granted for ${Number(distinct.n)} distinct users (of ${USERS})`);
  appendResults(RESULTS_FILE, {
    date: new Date(),
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown CPU',
    node: process.version,
    postgres,
    connections: CONNECTIONS,
    seconds,
    warmupSeconds,
    loadGenerator: workers > 0 ? `in ${workers} worker thread${workers > 1 ? 's' : ''}` : 'on the server thread',
    users: USERS,
    loadBefore,
  }, rows, ratios);
  say(`bench: appended to ${path.relative(process.cwd(), RESULTS_FILE)}`);

  let failed = false;
  for (const f of rows) {
    const rate = failureRate(f);
    if (f.ok === 0 || rate > MAX_FAILURE_RATE) {
      say(`bench: FAILED: ${f.label}: ${(rate * 100).toFixed(2)}% of requests were not 2xx or failed (limit ${MAX_FAILURE_RATE * 100}%)`);
      failed = true;
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
