import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXPENSES, seedExpenses, startTestServer, type TestServer, tokenRequest } from '../helpers/server.ts';
import { lastEntry } from '../helpers/ledger.ts';

let t: TestServer;
let creds: [string, string];
beforeAll(async () => {
  // Overlaps of seconds, so the test need not wait a minute for a key to start signing.
  t = await startTestServer({ keys: { min_rotation_overlap: 0 } });
  const seeded = await seedExpenses(t);
  creds = [seeded.clientId, seeded.secret];
});
afterAll(async () => { await t?.stop(); });

async function token(): Promise<string> {
  const res = await tokenRequest(t.url, { grant_type: 'client_credentials', resource: EXPENSES, scope: 'expenses:read' }, creds);
  expect(res.status).toBe(200);
  return ((await res.json()) as { access_token: string }).access_token;
}

async function jwks(): Promise<JSONWebKeySet> {
  return (await fetch(`${t.url}/jwks`)).json() as Promise<JSONWebKeySet>;
}

async function verify(jwt: string): Promise<void> {
  await jwtVerify(jwt, createLocalJWKSet(await jwks()), { issuer: t.issuer, audience: EXPENSES, typ: 'at+jwt' });
}

describe('key rotation', () => {
  it('publishes the next key first, signs with it after the overlap, and keeps earlier tokens verifiable', async () => {
    const before = await token();
    const oldKid = decodeProtectedHeader(before).kid!;

    // The checks during the overlap must run before it ends, also on a loaded machine: 8 s of it.
    const OVERLAP = 8;
    const rotated = await t.admin('POST', '/admin/api/keys/rotate', { overlap_seconds: OVERLAP });
    const overlapEnds = Date.now() + OVERLAP * 1000;
    expect(rotated.status).toBe(201);
    const { kid: newKid } = await rotated.json() as { kid: string };
    expect(newKid).not.toBe(oldKid);

    // During the overlap: both published, the old one still signs.
    expect((await jwks()).keys.map((k) => k.kid)).toEqual([oldKid, newKid]);
    const during = await token();
    expect(decodeProtectedHeader(during).kid).toBe(oldKid);
    const listed = await (await t.admin('GET', '/admin/api/keys')).json() as { items: Array<{ kid: string; status: string }> };
    expect(listed.items.map((k) => [k.kid, k.status])).toEqual([[oldKid, 'active'], [newKid, 'next']]);

    await new Promise((r) => setTimeout(r, overlapEnds + 200 - Date.now()));
    const after = await token();
    expect(decodeProtectedHeader(after).kid).toBe(newKid);
    // The retired key stays published while tokens it signed can still be live.
    expect((await jwks()).keys.map((k) => k.kid)).toEqual([oldKid, newKid]);
    await verify(before);
    await verify(during);
    await verify(after);
    const ledger = await lastEntry(t.server.db, 'keys.rotated');
    expect(ledger.payload.kid).toBe(newKid);
  });

  it('refuses a malformed rotation request', async () => {
    const res = await t.admin('POST', '/admin/api/keys/rotate', { overlap_seconds: -5 });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ field: 'overlap_seconds' });
  });

  it('keeps keys, clients and resources across a restart', async () => {
    const jwt = await token();
    const keysBefore = await jwks();
    await t.restart();
    expect(await jwks()).toEqual(keysBefore);
    await verify(jwt);
    expect(decodeProtectedHeader(await token()).kid).toBe(decodeProtectedHeader(jwt).kid);
    const client = await t.admin('GET', `/admin/api/clients/${creds[0]}`);
    expect(client.status).toBe(200);
    const resource = await t.admin('GET', `/admin/api/resources/${encodeURIComponent(EXPENSES)}`);
    expect(resource.status).toBe(200);
  });
});
