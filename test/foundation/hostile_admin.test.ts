import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedExpenses, startTestServer, type TestServer } from '../helpers/server.ts';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
  await seedExpenses(t);
});
afterAll(async () => { await t?.stop(); });

/** Everything an admin write could touch; compared before and after each hostile request. */
async function snapshot(): Promise<string> {
  const db = t.server.db;
  const [clients, resources, issuers, admins, ledger] = await Promise.all([
    db('clients').select('*').orderBy('client_id'),
    db('resources').select('*').orderBy('identifier'),
    db('issuers').select('*').orderBy('issuer'),
    db('admins').select('id', 'revoked_at').orderBy('id'),
    db('ledger_entries').count({ n: '*' }),
  ]);
  return JSON.stringify({ clients, resources, issuers, admins, ledger });
}

function raw(method: string, path: string, body: string, contentType = 'application/json'): Promise<Response> {
  return fetch(`${t.url}${path}`, { method, headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': contentType }, body });
}

describe('hostile admin input changes nothing', () => {
  const cases: Array<[string, () => Promise<Response>, number]> = [
    ['malformed JSON', () => raw('POST', '/admin/api/clients', '{"client_id": "x",'), 400],
    ['a JSON array', () => raw('POST', '/admin/api/clients', '[1,2]'), 400],
    ['JSON null', () => raw('POST', '/admin/api/clients', 'null'), 400],
    ['invalid UTF-8', () => fetch(`${t.url}/admin/api/clients`, { method: 'POST', headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/json' }, body: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]) }), 400],
    ['a form body', () => raw('POST', '/admin/api/clients', 'client_id=x', 'application/x-www-form-urlencoded'), 415],
    ['a huge body', () => raw('POST', '/admin/api/clients', JSON.stringify({ client_name: 'x'.repeat(2_000_000) })), 413],
    ['an unknown field', () => raw('POST', '/admin/api/clients', JSON.stringify({ client_id: 'x1', is_admin: true })), 400],
    ['a wrong type', () => raw('POST', '/admin/api/clients', JSON.stringify({ client_id: 42 })), 400],
    ['SQL in a client_id', () => raw('POST', '/admin/api/clients', JSON.stringify({ client_id: "x'; DROP TABLE clients; --" })), 400],
    ['SQL in a name', () => raw('PATCH', '/admin/api/clients/svc', JSON.stringify({ client_name: "'); DELETE FROM clients; --", grant_types: ['password'] })), 400],
    ['NUL in a name', () => raw('POST', '/admin/api/clients', JSON.stringify({ client_name: 'a\u0000b' })), 400],
    ['SQL in a path id', () => fetch(`${t.url}/admin/api/clients/${encodeURIComponent("svc' OR '1'='1")}`, { method: 'DELETE', headers: { authorization: `Bearer ${t.adminToken}` } }), 404],
    ['NUL in a path id', () => fetch(`${t.url}/admin/api/clients/svc%00`, { method: 'DELETE', headers: { authorization: `Bearer ${t.adminToken}` } }), 400],
    ['bad percent-encoding', () => fetch(`${t.url}/admin/api/clients/%E0%A4%A`, { method: 'DELETE', headers: { authorization: `Bearer ${t.adminToken}` } }), 400],
    ['prototype pollution keys', () => raw('POST', '/admin/api/resources', '{"identifier":"https://p.example","name":"p","scopes":[],"__proto__":{"admin":true}}'), 400],
    ['an empty patch', () => raw('PATCH', '/admin/api/clients/svc', '{}'), 400],
    ['a negative limit', () => fetch(`${t.url}/admin/api/clients?limit=-1`, { headers: { authorization: `Bearer ${t.adminToken}` } }), 400],
    ['a forged cursor', () => fetch(`${t.url}/admin/api/clients?cursor=${encodeURIComponent("' OR 1=1 --")}`, { headers: { authorization: `Bearer ${t.adminToken}` } }), 400],
    ['an unknown endpoint', () => raw('POST', '/admin/api/users', '{}'), 404],
    ['a wrong method', () => raw('PUT', '/admin/api/clients', '{}'), 405],
  ];

  it.each(cases)('%s', async (_name, send, status) => {
    const before = await snapshot();
    const res = await send();
    expect(res.status).toBe(status);
    const body = await res.json() as Record<string, unknown>;
    expect(typeof body.error).toBe('string');
    expect(typeof body.error_description).toBe('string');
    expect(JSON.stringify(body)).not.toMatch(/at .*\.ts:\d+|stack/i);
    expect(await snapshot()).toBe(before);
  });

  it('treats SQL metacharacters in filters as plain values', async () => {
    const res = await fetch(`${t.url}/admin/api/clients?grant_type=${encodeURIComponent("client_credentials' OR '1'='1")}&resource_server=${encodeURIComponent("x') OR 1=1 --")}`, { headers: { authorization: `Bearer ${t.adminToken}` } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ items: [], next_cursor: null });
    expect(await t.server.db('clients').count({ n: '*' })).toEqual([{ n: 1 }]);
  });
});
