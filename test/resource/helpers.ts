import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import { calculateJwkThumbprint, decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { expect } from 'vitest';
import { accessTokenHash } from '../../src/dpop/proof.ts';
import { EXPENSES, exchangeParams, type World } from '../helpers/world.ts';

/** A token from a real exchange by `agent`; fails the test if intentgate refuses it. */
export async function exchanged(w: World, extra: Record<string, string | string[]> = {}, clientId = 'agent'): Promise<string> {
  const res = await w.exchange(clientId, exchangeParams(await w.userToken(), extra));
  expect(res.status, await res.clone().text()).toBe(200);
  return ((await res.json()) as { access_token: string }).access_token;
}

export interface DpopKey {
  privateKey: CryptoKey;
  publicJwk: JWK;
  jkt: string;
}

export async function dpopKey(): Promise<DpopKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const publicJwk = await exportJWK(publicKey);
  return { privateKey, publicJwk, jkt: await calculateJwkThumbprint(publicJwk, 'sha256') };
}

/** An RFC 9449 proof; `claims` overrides or drops (undefined) any claim. */
export function proof(key: DpopKey, htm: string, htu: string, token?: string, claims: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT({
    htm, htu, jti: randomBytes(12).toString('base64url'), iat: Math.floor(Date.now() / 1000),
    ...(token ? { ath: accessTokenHash(token) } : {}), ...claims,
  })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.publicJwk })
    .sign(key.privateKey);
}

/** A DPoP-bound token from intentgate's client_credentials grant (client `batch`, expenses:read). */
export async function boundToken(w: World, key: DpopKey): Promise<string> {
  const res = await fetch(`${w.t.url}/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${w.creds.batch![0]}:${w.creds.batch![1]}`).toString('base64')}`,
      dpop: await proof(key, 'POST', `${w.t.url}/token`),
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: EXPENSES, scope: 'expenses:read' }),
  });
  const body = (await res.json()) as { access_token: string; token_type: string };
  expect(res.status, JSON.stringify(body)).toBe(200);
  expect(body.token_type).toBe('DPoP');
  return body.access_token;
}

/** A plain Bearer client_credentials token (client `batch`, expenses:read). */
export async function clientToken(w: World): Promise<string> {
  const res = await fetch(`${w.t.url}/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${w.creds.batch![0]}:${w.creds.batch![1]}`).toString('base64')}`,
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: EXPENSES, scope: 'expenses:read' }),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { access_token: string }).access_token;
}

export interface Served {
  url: string;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1:0. */
export async function serve(handler: http.RequestListener, options: http.ServerOptions = {}): Promise<Served> {
  const server = http.createServer(options, handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve, reject) => {
      server.closeAllConnections();
      server.close((err) => (err ? reject(err) : resolve()));
    }),
  };
}

/** Parses `error="…"` style parameters out of a WWW-Authenticate value (enough for these tests). */
export function challengeParams(header: string | null): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of (header ?? '').matchAll(/([a-z_]+)="([^"]*)"/g)) out[m[1]!] ??= m[2]!;
  return out;
}

/** Revokes a token by its jti through the admin API. */
export async function revoke(w: World, token: string): Promise<void> {
  const res = await w.t.admin('POST', '/admin/api/revocations', { jti: decodeJwt(token).jti });
  expect(res.status).toBe(201);
}

/** The introspection requests intentgate has answered so far, from its own /metrics. */
export async function introspectionCount(w: World): Promise<number> {
  const text = await (await fetch(`${w.t.url}/metrics`)).text();
  let n = 0;
  for (const m of text.matchAll(/^intentgate_http_requests_total\{[^}]*route="\/token\/introspection"[^}]*\} (\d+)$/gm)) n += Number(m[1]);
  return n;
}
