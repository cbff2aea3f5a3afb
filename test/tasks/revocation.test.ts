import path from 'node:path';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli } from '../helpers/cli.ts';
import { freePort, onPostgres } from '../helpers/server.ts';
import { ACCESS_TOKEN_TYPE, EXPENSES, exchangeParams, startWorld, type World } from '../helpers/world.ts';

let w: World;
beforeAll(async () => { w = await startWorld({ rate_limits: { token: { burst: 100_000, per_second: 100_000 } } }); });
afterAll(async () => { await w?.t.stop(); });

async function token(res: Response): Promise<string> {
  const body = await res.json() as { access_token?: string };
  if (res.status !== 200) throw new Error(`expected a token, got ${res.status} ${JSON.stringify(body)}`);
  return body.access_token!;
}

/** agent → delegation token for sub-agent (a task's root). */
async function root(sub = 'alice'): Promise<string> {
  const params = exchangeParams(await w.userToken({ sub }), { audience: 'sub-agent', scope: 'expenses:read', intent: 'Delegate reading' });
  delete params.resource;
  return token(await w.exchange('agent', params));
}

/** sub-agent exchanges `parent` for a token for `audience` (itself: a further delegation hop) or the expenses resource. */
async function child(parent: string, to: 'sub-agent' | 'expenses'): Promise<string> {
  const params: Record<string, string> = { subject_token: parent, subject_token_type: ACCESS_TOKEN_TYPE, scope: 'expenses:read', intent: 'Work on the task' };
  if (to === 'sub-agent') params.audience = 'sub-agent';
  else params.resource = EXPENSES;
  return token(await w.exchange('sub-agent', params));
}

async function status(jwt: string): Promise<string> {
  return (await w.t.server.db('issued_tokens').where({ jti: decodeJwt(jwt).jti }).first('status')).status;
}

async function introspect(jwt: string, url = w.t.url): Promise<boolean> {
  const res = await fetch(`${url}/token/introspection`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(w.creds['expenses-rs']!.join(':')).toString('base64')}` },
    body: new URLSearchParams({ token: jwt }),
  });
  return ((await res.json()) as { active: boolean }).active;
}

function revoke(body: unknown, url = w.t.url): Promise<Response> {
  return fetch(`${url}/admin/api/revocations`, { method: 'POST', headers: { authorization: `Bearer ${w.t.adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

describe('cascading revocation', () => {
  it('revoking a child revokes its descendants and leaves the parent and siblings live; revoking the root takes the rest', async () => {
    const t1 = await root();
    const t2 = await child(t1, 'sub-agent');
    const t3 = await child(t2, 'expenses');
    const t4 = await child(t1, 'expenses');
    expect(decodeJwt(t3).task).toBe(decodeJwt(t1).task);
    expect(await introspect(t3)).toBe(true);

    const res = await revoke({ jti: decodeJwt(t2).jti, reason: 'child misbehaved' });
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ revoked: 2 });
    expect(await introspect(t3)).toBe(false);
    expect(await status(t2)).toBe('revoked');
    expect(await status(t1)).toBe('active');
    expect(await introspect(t4)).toBe(true);

    const rootRes = await revoke({ jti: decodeJwt(t1).jti });
    expect(await rootRes.json()).toMatchObject({ revoked: 2 });
    expect(await introspect(t4)).toBe(false);
    // A revoked parent can no longer be exchanged.
    const again = await w.exchange('sub-agent', { subject_token: t1, subject_token_type: ACCESS_TOKEN_TYPE, resource: EXPENSES, scope: 'expenses:read', intent: 'Try again' });
    expect(again.status).toBe(400);
    expect(await again.json()).toMatchObject({ error: 'invalid_request' });
  });

  it('revokes a whole task, a client\'s tokens, or a user\'s agent access', async () => {
    const t1 = await root('bob');
    const t2 = await child(t1, 'expenses');
    const task = decodeJwt(t1).task as string;
    const view = await (await w.t.admin('GET', `/admin/api/tasks/${task}`)).json() as { tokens: Array<{ status: string }> };
    expect(view.tokens.map((t) => t.status)).toEqual(['active', 'active']);
    expect(await (await revoke({ task })).json()).toMatchObject({ revoked: 2 });
    expect(await introspect(t2)).toBe(false);

    const u1 = await child(await root('carol'), 'expenses');
    const u2 = await child(await root('carol'), 'expenses');
    const other = await child(await root('dave'), 'expenses');
    expect(await (await revoke({ user: { issuer: 'https://idp.test', sub: 'carol' } })).json()).toMatchObject({ revoked: 4 });
    expect([await introspect(u1), await introspect(u2), await introspect(other)]).toEqual([false, false, true]);

    expect((await (await revoke({ client_id: 'sub-agent' })).json() as { revoked: number }).revoked).toBeGreaterThan(0);
    expect(await introspect(other)).toBe(false);
    const entry = await (await w.t.admin('GET', '/admin/api/ledger?kind=token.revoked&limit=1')).json() as { items: Array<{ payload: Record<string, unknown> }> };
    expect(entry.items[0]!.payload).toMatchObject({ target: { client_id: 'sub-agent' }, reason: 'revoked by an admin' });
  });

  it('cascades from a holder\'s RFC 7009 revocation too', async () => {
    const t1 = await root('erin');
    const t2 = await child(t1, 'expenses');
    const res = await fetch(`${w.t.url}/token/revocation`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(w.creds.agent!.join(':')).toString('base64')}` },
      body: new URLSearchParams({ token: t1 }),
    });
    expect(res.status).toBe(200);
    expect(await introspect(t2)).toBe(false);
  });

  it('refuses malformed revocation requests', async () => {
    expect((await revoke({})).status).toBe(400);
    expect((await revoke({ jti: 'a', task: 'b' })).status).toBe(400);
    expect((await revoke({ user: { sub: 'x' } })).status).toBe(400);
    expect(await (await revoke({ jti: 'unknown' })).json()).toEqual({ revoked: 0, jtis: [] });
  });
});

describe('an exchange racing a revocation', () => {
  it('never leaves a live token minted from a parent after its revocation committed', async () => {
    for (let trial = 0; trial < 5; trial++) {
      const parent = await root(`racer-${trial}`);
      const jti = decodeJwt(parent).jti!;
      const exchanges = Array.from({ length: 8 }, () => w.exchange('sub-agent', {
        subject_token: parent, subject_token_type: ACCESS_TOKEN_TYPE, resource: EXPENSES, scope: 'expenses:read', intent: 'Race',
      }));
      const revocation = revoke({ jti });
      const results = await Promise.all(exchanges);
      expect((await revocation).status).toBe(201);
      for (const res of results) {
        const body = await res.json() as { access_token?: string; error?: string };
        if (res.status === 200) expect(await introspect(body.access_token!)).toBe(false);
        else expect(body.error).toBe('invalid_request');
      }
      const live = await w.t.server.db('issued_tokens').where({ parent_jti: jti, status: 'active' }).count({ n: '*' }).first();
      expect(Number(live!.n)).toBe(0);
    }
  });
});

describe.skipIf(!onPostgres)('two processes (PostgreSQL only)', () => {
  it('a revocation on one instance is seen by introspection on another at once', async () => {
    const port = await freePort();
    const second = startCli(['start-dev'], { ...w.t.env, PORT: String(port), LOG_LEVEL: 'warn', INTENTGATE_CONFIG: path.resolve('config/default.yaml') }, /listening:/);
    try {
      await second.started;
      const otherUrl = `http://127.0.0.1:${port}`;
      const t = await child(await root('frank'), 'expenses');
      expect(await introspect(t, otherUrl)).toBe(true);
      expect((await revoke({ jti: decodeJwt(t).jti }, otherUrl)).status).toBe(201);
      expect(await introspect(t)).toBe(false);
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }
  }, 60_000);
});
