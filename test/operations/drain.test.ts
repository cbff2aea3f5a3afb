import http from 'node:http';
import net from 'node:net';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../../src/store/db.ts';
import { startCli } from '../helpers/cli.ts';
import { send, type Outcome } from '../helpers/load.ts';
import { basicAuth, freePort } from '../helpers/server.ts';
import { exchangeParams, startWorld, TOKEN_EXCHANGE, type World } from '../helpers/world.ts';

/**
 * A rolling restart, for real: a server process started through the CLI gets SIGTERM while clients hold
 * kept-alive connections busy with token exchanges, a readiness probe polls over a kept-alive connection, and
 * one request is still arriving. Nothing may be reset, readiness must drop before the in-flight request is
 * done, and the process must exit once it is, long before its shutdown deadline.
 */

const CONNECTIONS = 16;
const SHUTDOWN_TIMEOUT = 60;

let w: World;
beforeAll(async () => {
  w = await startWorld({ rate_limits: { token: { burst: 1_000_000, per_second: 1_000_000 } } });
  // The in-process server only seeded the database; the process under test takes it over.
  await w.t.server.close();
});
afterAll(async () => { await w?.t.stop(); });

/** A config file for the server process: the world's policy and issuer setup, no rate limit in the way. */
function writeConfig(extra: Record<string, unknown>): string {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'ig-drain-')), 'config.yaml');
  const defaults = YAML.parse(readFileSync('config/default.yaml', 'utf8')) as Record<string, unknown>;
  writeFileSync(file, YAML.stringify({
    ...defaults,
    policy: { file: path.resolve('test/fixtures/policy/exchange.yaml') },
    development_issuer: false,
    rate_limits: { token: { burst: 1_000_000, per_second: 1_000_000 }, admin: { burst: 60, per_second: 30 } },
    ...extra,
  }));
  return file;
}

function jtiOf(accessToken: string): string {
  return (JSON.parse(Buffer.from(accessToken.split('.')[1]!, 'base64url').toString('utf8')) as { jti: string }).jti;
}

/** A token-exchange request that arrives slowly: headers and half the body now, the rest on `finish()`. */
async function slowExchange(url: string, form: string): Promise<{ finish(): void; answer: Promise<string> }> {
  const { port } = new URL(url);
  const socket = net.connect(Number(port), '127.0.0.1');
  await new Promise<void>((r) => socket.once('connect', () => r()));
  // 'connect' only means the kernel completed the handshake: on a busy machine the connection may still wait in
  // the listen backlog, and a listener that closes resets what is queued there (a connection the server never
  // had). One answered request on it first proves the server accepted it, as a kept-alive client's would be.
  socket.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
  await new Promise<void>((resolve, reject) => {
    let head = '';
    const onData = (d: Buffer) => {
      head += d.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head.slice(0, end))?.[1] ?? 0);
      if (head.length < end + 4 + length) return;
      socket.off('data', onData);
      resolve();
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
  const half = Math.floor(form.length / 2);
  socket.write(`POST /token HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: ${basicAuth(...w.creds.agent!)}\r\n`
    + `Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ${Buffer.byteLength(form)}\r\n\r\n${form.slice(0, half)}`);
  let raw = '';
  socket.on('data', (d) => { raw += d; });
  const answer = new Promise<string>((resolve, reject) => {
    socket.on('end', () => resolve(raw));
    socket.on('error', reject);
  });
  return { finish: () => socket.write(form.slice(half)), answer };
}

describe('draining on SIGTERM under keep-alive load', () => {
  it('resets nothing, drops readiness at once, finishes in-flight requests, and exits as soon as they are done', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const env = { ...w.t.env, PORT: String(port), ISSUER: w.t.issuer, LOG_LEVEL: 'warn', INTENTGATE_CONFIG: writeConfig({ server: { shutdown_timeout: SHUTDOWN_TIMEOUT } }) };
    const proc = startCli(['start-dev'], env, /listening:/);
    await proc.started;

    const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
    const outcomes: Outcome[] = [];
    let stop = false;
    let sub = 0;
    const exchange = async () => new URLSearchParams({ grant_type: TOKEN_EXCHANGE, ...exchangeParams(await w.userToken({ sub: `d${sub++}` })) } as Record<string, string>).toString();
    const workers = Array.from({ length: CONNECTIONS }, async () => {
      while (!stop) {
        const o = await send(agent, url, {
          method: 'POST', path: '/token', body: await exchange(),
          headers: { authorization: basicAuth(...w.creds.agent!), 'content-type': 'application/x-www-form-urlencoded' },
        });
        outcomes.push(o);
        // Refused: the listener is closed, so the request was never sent. Anything else ends the run too.
        if (o.error) return;
      }
    });

    // The readiness probe, over one kept-alive connection, as a load balancer's would be.
    const probeAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const probes: Outcome[] = [];
    let termSent = -1;
    const probing = (async () => {
      for (;;) {
        const o = await send(probeAgent, url, { method: 'GET', path: '/readyz' });
        probes.push(o);
        if (o.error || o.status !== 200) return;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();

    // A kept-alive connection a load balancer's health check left idle before SIGTERM.
    const idleAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    expect((await send(idleAgent, url, { method: 'GET', path: '/readyz' })).status).toBe(200);

    const loaded = () => outcomes.filter((o) => o.status === 200).length >= 40;
    for (let i = 0; i < 600 && !loaded(); i++) await new Promise((r) => setTimeout(r, 100));
    expect(loaded()).toBe(true);
    const slow = await slowExchange(url, await exchange());

    termSent = outcomes.length;
    proc.child.kill('SIGTERM');
    const exited = proc.exited.then((code) => ({ code, at: performance.now() }));
    const sigtermAt = performance.now();

    // Readiness drops at once, while a request is still in flight (the process is still there for it): on a
    // kept-alive connection the answer is 503 and closes it; a new connection is refused.
    for (let i = 0; i < 600 && !proc.output().stderr.includes('received SIGTERM'); i++) await new Promise((r) => setTimeout(r, 50));
    const notReady = await send(idleAgent, url, { method: 'GET', path: '/readyz' });
    expect(notReady.reused, JSON.stringify(notReady)).toBe(true);
    expect(notReady.status, JSON.stringify(notReady)).toBe(503);
    expect(notReady.headers?.connection).toBe('close');
    expect(JSON.parse(notReady.body!)).toMatchObject({ error: 'temporarily_unavailable', error_description: 'the server is shutting down' });
    await probing;
    const probeEnd = probes.at(-1)!;
    expect(probeEnd.status === 503 || probeEnd.error === 'ECONNREFUSED', JSON.stringify(probeEnd)).toBe(true);
    expect(proc.child.exitCode).toBeNull();
    const outcomesWhenNotReady = outcomes.length;

    slow.finish();
    const raw = await slow.answer;
    expect(raw).toMatch(/^HTTP\/1\.1 200 /);
    expect(raw).toMatch(/\r\nconnection: close\r\n/i);
    const slowToken = /"access_token":"([^"]+)"/.exec(raw)![1]!;

    const { code, at } = await exited;
    stop = true;
    await Promise.all(workers);
    agent.destroy();
    probeAgent.destroy();
    idleAgent.destroy();
    expect(code, proc.output().stderr).toBe(0);
    // Long before the deadline (a generous bound: the drain itself is a matter of milliseconds).
    expect(at - sigtermAt).toBeLessThan((SHUTDOWN_TIMEOUT / 2) * 1000);

    // Not one request reset: every request got its answer, or was refused a connection (never sent).
    const failures = outcomes.filter((o) => o.error !== undefined && o.error !== 'ECONNREFUSED');
    expect(failures).toEqual([]);
    expect(outcomes.filter((o) => o.status !== undefined && o.status !== 200)).toEqual([]);
    // Each kept-alive connection was told to close with the first answer after SIGTERM, which was its last:
    // no connection went on being served (at most two answers each after readiness dropped: the one already
    // on its way, and the one that closed it).
    const bySocket = new Map<number, Outcome[]>();
    for (const o of outcomes) if (o.status) bySocket.set(o.socket, [...(bySocket.get(o.socket) ?? []), o]);
    for (const answers of bySocket.values()) {
      const closing = answers.findIndex((o) => o.headers?.connection === 'close');
      if (closing !== -1) expect(closing).toBe(answers.length - 1);
    }
    expect(outcomes.slice(outcomesWhenNotReady).filter((o) => o.status).length).toBeLessThanOrEqual(2 * CONNECTIONS);
    expect(outcomes.slice(termSent).some((o) => o.headers?.connection === 'close')).toBe(true);

    // Every token a client received has its ledger entry, and the shutdown anchored what was pending.
    const tokens = [...outcomes.filter((o) => o.status === 200).map((o) => (JSON.parse(o.body!) as { access_token: string }).access_token), slowToken];
    const db = createDb({ databaseUrl: w.t.config.databaseUrl, dataDir: w.t.config.dataDir, poolMax: 2 });
    try {
      const recorded = new Set((await db('ledger_entries').where({ kind: 'exchange.granted' }).select('jti')).map((r: { jti: string }) => r.jti));
      expect(tokens.map(jtiOf).filter((jti) => !recorded.has(jti))).toEqual([]);
      const head = Number((await db('ledger_head').where({ id: 1 }).first('seq')).seq);
      const checkpoint = await db('ledger_checkpoints').max('tree_size as size').first();
      expect(Number(checkpoint?.size)).toBe(head);
    } finally {
      await db.destroy();
    }
  }, 180_000);
});
