// `npm run bench:overload`: what admission control does when more clients come than one process can serve.
// One intentgate process (defaults: 64 slots, 50 ms queueing) on a fresh PostgreSQL database, driven with token
// exchanges from 1 connection (the unloaded latency), 64 (its capacity), and far more (400 and 1,500), once
// with clients that honour `Retry-After` and once with clients that retry at once. For every phase it reports
// admitted and shed answers separately (rate, p50, p99, max), anything else (other statuses, resets), and the
// server's peak resident memory. See bench/RESULTS.md.
//
// The load generator is a small keep-alive HTTP/1.1 client on raw sockets in this process (node:http's client
// costs more per request than the shed answers it measures); latency is from writing a request to reading the
// last byte of its answer, so it includes this process's own event loop, which the report's CPU column shows.
import net from 'node:net';
import { appendFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type CryptoKey } from 'jose';
import { adminClient, basicAuth, createDatabase, exchangeBody, register, serverVersion, userTokens, type BenchDatabase } from './fixture.ts';
import type { Usage } from './child.ts';
import { ServerProcess } from './server_process.ts';

const USERS = 2000;
const RESULTS_FILE = path.join(import.meta.dirname, 'RESULTS.md');
const serverUrl = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const warmup = Number(process.env.BENCH_WARMUP_SECONDS ?? 3);
const say = (line: string): void => void process.stderr.write(`${line}\n`);
// Node flags for the intentgate process only, as in `npm run bench` (e.g. --max-semi-space-size=8).
const serverFlags = (process.env.BENCH_SERVER_FLAGS ?? '').split(' ').filter(Boolean);

interface PhaseSpec { label: string; connections: number; honourRetryAfter: boolean }
const PHASES: PhaseSpec[] = [
  { label: 'one at a time (unloaded)', connections: 1, honourRetryAfter: true },
  { label: 'capacity: 64 connections', connections: 64, honourRetryAfter: true },
  { label: '400 connections, clients honour Retry-After', connections: 400, honourRetryAfter: true },
  { label: '1,500 connections, clients honour Retry-After', connections: 1500, honourRetryAfter: true },
  { label: '1,500 connections, clients retry at once', connections: 1500, honourRetryAfter: false },
];

// ---------------------------------------------------------------------------------------------------
// A minimal keep-alive client: one request at a time per socket, Content-Length bodies only (what the server
// under test sends), a new socket whenever the server closes one.

interface Answer { status: number; retryAfter: number; ms: number }

class Connection {
  #socket: net.Socket | undefined;
  #buf: Buffer = Buffer.alloc(0);
  #waiting: { resolve(a: Answer): void; started: number } | undefined;
  readonly #port: number;

  constructor(port: number) {
    this.#port = port;
  }

  #open(): net.Socket {
    const socket = net.connect({ port: this.#port, host: '127.0.0.1', noDelay: true });
    socket.on('data', (chunk) => this.#onData(chunk));
    // Only the current socket's end answers a waiting request (one closed on purpose was already replaced).
    const gone = () => {
      if (this.#socket !== socket) return;
      this.#socket = undefined;
      this.#settle({ status: 0, retryAfter: 0 });
    };
    socket.on('error', gone);
    socket.on('close', gone);
    this.#buf = Buffer.alloc(0);
    return socket;
  }

  #settle(a: { status: number; retryAfter: number }): void {
    const w = this.#waiting;
    if (!w) return;
    this.#waiting = undefined;
    w.resolve({ ...a, ms: performance.now() - w.started });
  }

  #onData(chunk: Buffer): void {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
    const end = this.#buf.indexOf('\r\n\r\n');
    if (end === -1) return;
    const head = this.#buf.subarray(0, end).toString('latin1');
    const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
    if (this.#buf.length < end + 4 + length) return;
    this.#buf = this.#buf.subarray(end + 4 + length);
    const status = Number(head.slice(9, 12));
    const retryAfter = Number(/\r\nretry-after:\s*(\d+)/i.exec(head)?.[1] ?? 0);
    if (/\r\nconnection:\s*close/i.test(head)) {
      this.#socket?.destroy();
      this.#socket = undefined;
    }
    this.#settle({ status, retryAfter });
  }

  send(request: Buffer): Promise<Answer> {
    this.#socket ??= this.#open();
    return new Promise((resolve) => {
      this.#waiting = { resolve, started: performance.now() };
      this.#socket!.write(request);
    });
  }

  close(): void {
    this.#socket?.destroy();
  }
}

function exchangeRequest(port: number, authorization: string, body: string): Buffer {
  return Buffer.from(
    `POST /token HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: ${authorization}\r\n`
    + `Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

// ---------------------------------------------------------------------------------------------------
// Phases

interface Figures { count: number; perSecond: number; p50: number; p99: number; max: number }
interface PhaseResult {
  spec: PhaseSpec;
  admitted: Figures;
  shed: Figures;
  other: Record<string, number>;
  peakRssMb: number;
  serverCpuShare: number;
  clientCpuShare: number;
}

function figures(ms: number[], window: number): Figures {
  const sorted = Float64Array.from(ms).sort();
  const at = (q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : NaN);
  return { count: sorted.length, perSecond: sorted.length / window, p50: at(0.5), p99: at(0.99), max: sorted.length ? sorted[sorted.length - 1]! : NaN };
}

async function runPhase(server: ServerProcess, port: number, requests: Buffer[], spec: PhaseSpec): Promise<PhaseResult> {
  const admitted: number[] = [];
  const shed: number[] = [];
  const other: Record<string, number> = {};
  const start = performance.now();
  const measureFrom = start + warmup * 1000;
  const measureTo = measureFrom + seconds * 1000;
  let next = 0;
  let peakRss = 0;
  let sampling = true;
  let serverCpuFrom = 0;
  let serverCpuTo = 0;
  let clientCpuFrom = process.cpuUsage();
  let clientCpuTo = clientCpuFrom;
  const sampler = (async () => {
    let marked = false;
    while (sampling) {
      const u = await server.call<Usage>('usage');
      peakRss = Math.max(peakRss, u.rss);
      if (!marked && performance.now() >= measureFrom) {
        marked = true;
        serverCpuFrom = u.cpuMicros;
        clientCpuFrom = process.cpuUsage();
      }
      serverCpuTo = u.cpuMicros;
      clientCpuTo = process.cpuUsage();
      await sleep(200);
    }
  })();

  const loops = Array.from({ length: spec.connections }, async () => {
    const conn = new Connection(port);
    // Spread the first requests over 100 ms, as clients arriving, not one SYN flood.
    await sleep(Math.random() * 100);
    while (performance.now() < measureTo) {
      const sentAt = performance.now();
      const answer = await conn.send(requests[next++ % requests.length]!);
      const counted = sentAt >= measureFrom && sentAt < measureTo;
      if (answer.status >= 200 && answer.status < 300) {
        if (counted) admitted.push(answer.ms);
      } else if (answer.status === 503 && answer.retryAfter > 0) {
        if (counted) shed.push(answer.ms);
        // A well-behaved client waits Retry-After, with jitter so that shed clients do not return in step.
        if (spec.honourRetryAfter) await sleep(answer.retryAfter * 1000 * (1 + Math.random()));
      } else {
        const key = answer.status === 0 ? 'reset or closed' : String(answer.status);
        if (counted) other[key] = (other[key] ?? 0) + 1;
        if (answer.status === 0) await sleep(10);
      }
    }
    conn.close();
  });
  await Promise.all(loops);
  sampling = false;
  await sampler;
  const cpu = (a: NodeJS.CpuUsage, b: NodeJS.CpuUsage) => (b.user - a.user + b.system - a.system) / 1000;
  return {
    spec,
    admitted: figures(admitted, seconds),
    shed: figures(shed, seconds),
    other,
    peakRssMb: peakRss / 2 ** 20,
    serverCpuShare: (serverCpuTo - serverCpuFrom) / 1000 / (seconds * 1000),
    clientCpuShare: cpu(clientCpuFrom, clientCpuTo) / (seconds * 1000),
  };
}

// ---------------------------------------------------------------------------------------------------

function table(results: PhaseResult[]): string {
  const f = (n: number, d = 0) => (Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }) : '–');
  const lines = [
    '| load | admitted req/s | admitted p50 / p99 / max ms | shed req/s | shed p50 / p99 / max ms | other answers | server peak RSS MB | CPU server / load generator |',
    '|---|---:|---:|---:|---:|---|---:|---:|',
  ];
  for (const r of results) {
    const other = Object.entries(r.other).map(([k, v]) => `${v} × ${k}`).join(', ') || 'none';
    lines.push(`| ${r.spec.label} | ${f(r.admitted.perSecond)} | ${f(r.admitted.p50, 1)} / ${f(r.admitted.p99, 1)} / ${f(r.admitted.max, 0)} | ${f(r.shed.perSecond)} | ${r.shed.count ? `${f(r.shed.p50, 1)} / ${f(r.shed.p99, 1)} / ${f(r.shed.max, 0)}` : '–'} | ${other} | ${f(r.peakRssMb)} | ${f(r.serverCpuShare * 100)}% / ${f(r.clientCpuShare * 100)}% |`);
  }
  return lines.join('\n');
}

async function main(): Promise<number> {
  let database: BenchDatabase | undefined;
  let server: ServerProcess | undefined;
  try {
    database = await createDatabase(serverUrl);
    server = await ServerProcess.start('intentgate', 'serve.ts', { BENCH_DATABASE_URL: database.url }, serverFlags);
    const url = String(server.ready.url);
    const port = Number(new URL(url).port);
    const reg = await register(adminClient(url, String(server.ready.adminToken)));
    const authorization = basicAuth(reg.agent);
    const requests = (await userTokens(reg.idpKey as CryptoKey, USERS)).map((u) => exchangeRequest(port, authorization, exchangeBody(u.token)));
    const loadBefore = os.loadavg()[0]!;
    const results: PhaseResult[] = [];
    for (const spec of PHASES) {
      say(`overload: ${spec.label} (${warmup} s warm-up, ${seconds} s measured)`);
      const r = await runPhase(server, port, requests, spec);
      say(`  admitted ${r.admitted.count} (p99 ${r.admitted.p99.toFixed(1)} ms), shed ${r.shed.count} (p99 ${r.shed.p99.toFixed(1)} ms), other ${JSON.stringify(r.other)}, peak RSS ${r.peakRssMb.toFixed(0)} MB`);
      results.push(r);
      await sleep(2000); // let the Retry-After waits and the sockets of this phase end before the next
    }
    const heading = `## ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC: overload (admission control)`;
    const context = `${os.cpus().length} CPUs (${os.cpus()[0]?.model.trim()}), Node ${process.version}, PostgreSQL ${await serverVersion(serverUrl)}; one intentgate process with the shipped admission defaults (64 slots, 50 ms queueing); token exchanges from ${USERS} users; ${warmup} s warm-up then ${seconds} s measured per phase (\`npm run bench:overload\`); load average ${loadBefore.toFixed(2)} before the run. Shed = 503 \`temporarily_unavailable\` with \`Retry-After\`; clients that honour it wait Retry-After × (1 + a random fraction) before their next request.`;
    const text = `\n${heading}\n\n${context}\n\n${table(results)}\n`;
    process.stdout.write(text);
    if (process.env.BENCH_WRITE !== '0') appendFileSync(RESULTS_FILE, text);
    const bad = results.flatMap((r) => Object.keys(r.other).length ? [`${r.spec.label}: ${JSON.stringify(r.other)}`] : []);
    if (bad.length) say(`overload: answers that were neither a token nor a shed 503:\n  ${bad.join('\n  ')}`);
    return bad.length ? 1 : 0;
  } finally {
    await server?.stop().catch((err: Error) => say(`overload: could not stop the server: ${err.message}`));
    await database?.drop().catch((err: Error) => say(`overload: could not drop the database: ${err.message}`));
  }
}

process.exitCode = await main();
