import http from 'node:http';
import net from 'node:net';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli } from '../helpers/cli.ts';
import { percentile, send, type Outcome } from '../helpers/load.ts';
import { basicAuth, EXPENSES, freePort, onPostgres, startTestServer, seedExpenses, type TestServer } from '../helpers/server.ts';

/**
 * Admission control in a server process of its own (so its memory is its own): requests beyond the
 * configured concurrency and queueing delay are shed with 503 and Retry-After, health endpoints never are,
 * and 1,000 connections at once get an answer each (a token or a 503), with nothing reset and memory bounded.
 */

const MAX_CONCURRENCY = 8;
// The bound README documents for 1,000 connections (peak resident set of the server process).
const RSS_BOUND_MIB = 400;
const CONNECTIONS = 1000;

let t: TestServer;
let creds: [string, string];
let url: string;
let proc: ReturnType<typeof startCli>;

beforeAll(async () => {
  t = await startTestServer();
  const seeded = await seedExpenses(t);
  creds = [seeded.clientId, seeded.secret];
  await t.server.close();
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'ig-admission-')), 'config.yaml');
  const defaults = YAML.parse(readFileSync('config/default.yaml', 'utf8')) as Record<string, unknown>;
  writeFileSync(file, YAML.stringify({
    ...defaults,
    policy: { file: path.resolve('config/policies/default.yaml') },
    rate_limits: { token: { burst: 1_000_000, per_second: 1_000_000 }, admin: { burst: 1_000_000, per_second: 1_000_000 } },
    server: { max_concurrency: MAX_CONCURRENCY, max_queue_delay_ms: 50, shutdown_timeout: 10 },
  }));
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  proc = startCli(['start-dev'], { ...t.env, PORT: String(port), ISSUER: t.issuer, LOG_LEVEL: 'error', INTENTGATE_CONFIG: file }, /listening:/);
  await proc.started;
}, 120_000);
afterAll(async () => {
  proc?.child.kill('SIGTERM');
  await proc?.exited;
  await t?.stop();
});

function tokenForm(): string {
  return new URLSearchParams({ grant_type: 'client_credentials', resource: EXPENSES }).toString();
}

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return text.split('\n').filter((l) => l.startsWith(name)).reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0);
}

/** A /token request whose body has not all arrived: admitted (it holds a slot) until `finish()`. */
async function held(): Promise<{ finish(): void; answer: Promise<string> }> {
  const form = tokenForm();
  const socket = net.connect(Number(new URL(url).port), '127.0.0.1');
  await new Promise<void>((r) => socket.once('connect', () => r()));
  socket.write(`POST /token HTTP/1.1\r\nHost: ${new URL(url).host}\r\nAuthorization: ${basicAuth(...creds)}\r\nConnection: close\r\n`
    + `Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ${form.length}\r\n\r\n${form.slice(0, 5)}`);
  let raw = '';
  socket.on('data', (d) => { raw += d; });
  const answer = new Promise<string>((resolve, reject) => {
    socket.on('end', () => resolve(raw));
    socket.on('error', reject);
  });
  return { finish: () => socket.write(form.slice(5)), answer };
}

function expectShed(o: Outcome): void {
  expect(o.status, JSON.stringify(o)).toBe(503);
  expect(o.headers?.['retry-after']).toBe('1');
  expect(o.headers?.['content-type']).toMatch(/^application\/json/);
  expect(JSON.parse(o.body!)).toEqual({ error: 'temporarily_unavailable', error_description: 'the authorization server is overloaded; retry later' });
}

describe('admission control', () => {
  it('sheds at once what is beyond the slots, never the health endpoints, and serves the held requests', async () => {
    const holders = await Promise.all(Array.from({ length: MAX_CONCURRENCY }, held));
    // Every slot is taken once the server has read the held requests' headers.
    for (let i = 0; i < 300 && (await metric('intentgate_http_admitted')) < MAX_CONCURRENCY; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await metric('intentgate_http_admitted')).toBe(MAX_CONCURRENCY);
    const shedBefore = await metric('intentgate_http_shed_total');

    const agent = new http.Agent({ keepAlive: true });
    const tokenHeaders = { authorization: basicAuth(...creds), 'content-type': 'application/x-www-form-urlencoded' };
    const refused = await Promise.all([
      ...Array.from({ length: 10 }, () => send(agent, url, { method: 'POST', path: '/token', headers: tokenHeaders, body: tokenForm() })),
      // Shed before its body is read: an oversized or malformed one gets the same cheap answer.
      send(agent, url, { method: 'POST', path: '/token', headers: tokenHeaders, body: 'x'.repeat(200_000) }),
      send(agent, url, { method: 'GET', path: '/admin/api/clients', headers: { authorization: `Bearer ${t.adminToken}` } }),
      send(agent, url, { method: 'GET', path: '/jwks' }),
    ]);
    refused.forEach(expectShed);
    for (const p of ['/healthz', '/readyz', '/metrics']) expect((await send(agent, url, { method: 'GET', path: p })).status).toBe(200);
    expect(await metric('intentgate_http_shed_total')).toBe(shedBefore + refused.length);

    for (const h of holders) h.finish();
    for (const h of holders) expect(await h.answer).toMatch(/^HTTP\/1\.1 200 /);
    expect((await send(agent, url, { method: 'POST', path: '/token', headers: tokenHeaders, body: tokenForm() })).status).toBe(200);
    agent.destroy();
  }, 120_000);

  it('answers 1,000 connections at once with a token or a 503 each, resets nothing, and stays within its memory bound', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
    const headers = { authorization: basicAuth(...creds), 'content-type': 'application/x-www-form-urlencoded' };
    const shedBefore = await metric('intentgate_http_shed_total');
    const outcomes = (await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
      const mine: Outcome[] = [];
      for (let i = 0; i < 3; i++) mine.push(await send(agent, url, { method: 'POST', path: '/token', headers, body: tokenForm() }));
      return mine;
    }))).flat();
    agent.destroy();

    expect(JSON.stringify(outcomes.filter((o) => o.error !== undefined))).toBe('[]');
    expect(outcomes.filter((o) => o.status !== 200 && o.status !== 503)).toEqual([]);
    const shed = outcomes.filter((o) => o.status === 503);
    shed.forEach(expectShed);
    expect(shed.length).toBeGreaterThan(0);
    expect(await metric('intentgate_http_shed_total')).toBe(shedBefore + shed.length);
    const admitted = outcomes.filter((o) => o.status === 200);
    expect(admitted.length).toBeGreaterThan(0);

    // Peak resident set of the server process over its whole life (Linux).
    const status = `/proc/${proc.child.pid}/status`;
    const peakMiB = existsSync(status) ? Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(status, 'utf8'))![1]) / 1024 : 0;
    // On PostgreSQL only: the embedded PGlite (development mode) is a WebAssembly PostgreSQL inside the server
    // process, and its own memory (hundreds of MiB) is not the server's to bound.
    if (onPostgres) expect(peakMiB).toBeLessThan(RSS_BOUND_MIB);
    // Figures for the record, never asserted: they depend on the machine.
    console.info(`admission: ${admitted.length} admitted (p99 ${percentile(admitted.map((o) => o.ms), 99).toFixed(0)} ms), `
      + `${shed.length} shed (p99 ${percentile(shed.map((o) => o.ms), 99).toFixed(0)} ms), peak RSS ${peakMiB.toFixed(0)} MiB`);
  }, 300_000);
});
