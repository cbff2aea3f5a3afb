import { decodeJwt } from 'jose';
import { expect } from 'vitest';
import { clientCredentials, proof as sharedProof, resourceProof, type Holder } from '../helpers/dpop.ts';
import { exchangeParams, type World } from '../helpers/world.ts';

/** A token from a real exchange by `agent`; fails the test if intentgate refuses it. */
export async function exchanged(w: World, extra: Record<string, string | string[]> = {}, clientId = 'agent'): Promise<string> {
  const res = await w.exchange(clientId, exchangeParams(await w.userToken(), extra));
  expect(res.status, await res.clone().text()).toBe(200);
  return ((await res.json()) as { access_token: string }).access_token;
}

export { holder as dpopKey, type Holder as DpopKey } from '../helpers/dpop.ts';

/** An RFC 9449 proof for `htm` `htu`, with `ath` when presenting `token`; `claims` overrides or drops (undefined) any claim. */
export function proof(key: Holder, htm: string, htu: string, token?: string, claims: Record<string, unknown> = {}): Promise<string> {
  return token ? resourceProof(key, htm, htu, token, claims) : sharedProof(key, htu, { htm, ...claims });
}

/** A DPoP-bound token from intentgate's client_credentials grant (client `batch`, expenses:read). */
export async function boundToken(w: World, key: Holder): Promise<string> {
  const res = await clientCredentials(w, { dpop: await proof(key, 'POST', `${w.t.url}/token`) });
  const body = (await res.json()) as { access_token: string; token_type: string };
  expect(res.status, JSON.stringify(body)).toBe(200);
  expect(body.token_type).toBe('DPoP');
  return body.access_token;
}

/** A plain Bearer client_credentials token (client `batch`, expenses:read). */
export async function clientToken(w: World): Promise<string> {
  const res = await clientCredentials(w);
  expect(res.status).toBe(200);
  return ((await res.json()) as { access_token: string }).access_token;
}

export { serve, type Served } from '../helpers/server.ts';

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
