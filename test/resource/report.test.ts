import express from 'express';
import { decodeJwt } from 'jose';
import Koa from 'koa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accessFrom, createResourceVerifier, nodeAuth, ResourceReportError, type CallRequirement, type ResourceAuthInfo, type ResourceVerifier } from '@intentgate/resource';
import { koaAuth } from '@intentgate/resource/koa';
import { details, EXPENSES, HR, startWorld, type World } from '../helpers/world.ts';
import { exchanged, serve, type Served } from './helpers.ts';

let w: World;
let v: ResourceVerifier;
const apps: Record<string, Served> = {};

interface Entry { seq: number; kind: string; actor: string; payload: Record<string, unknown> }

async function resourceEvents(jti: string): Promise<Entry[]> {
  const res = await w.t.admin('GET', `/admin/api/ledger?kind=resource.event&jti=${encodeURIComponent(jti)}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { items: Entry[] }).items;
}

function approve(id: string): CallRequirement {
  return { scope: 'expenses:approve', action: 'approve', objectType: 'Expense', objectId: id };
}

beforeAll(async () => {
  w = await startWorld();
  const credentials = { clientId: w.creds['expenses-rs']![0], clientSecret: w.creds['expenses-rs']![1] };
  v = createResourceVerifier({ issuer: w.t.issuer, resource: EXPENSES, credentials });

  const koa = new Koa();
  koa.use(koaAuth(v, (ctx) => approve(ctx.path.split('/')[2]!), { baseUrl: EXPENSES }));
  koa.use(async (ctx) => {
    const seq = await ctx.state.auth.report({ outcome: 'success', action: 'approve', object: { type: 'Expense', id: ctx.path.split('/')[2]! }, summary: { approved: 1 } });
    ctx.body = { seq };
  });
  apps.koa = await serve(koa.callback());

  const ex = express();
  ex.post('/expenses/:id/approve', nodeAuth<express.Request>(v, (req) => approve(String(req.params.id)), { baseUrl: EXPENSES }), async (req, res) => {
    const seq = await accessFrom((req as { auth?: ResourceAuthInfo }).auth).report({ outcome: 'failure', action: 'approve', object: { type: 'Expense', id: String(req.params.id) } });
    res.json({ seq });
  });
  apps.express = await serve(ex);

});
afterAll(async () => {
  for (const a of Object.values(apps)) await a.close();
  await w?.t.stop();
});

const approveToken = (id: string) => exchanged(w, { scope: 'expenses:approve', authorization_details: details('approve', { type: 'Expense', id, amount: 50 }) });
const post = (app: string, path: string, token: string) => fetch(`${apps[app]!.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });

describe('reporting to the ledger (POST /ledger/events)', () => {
  it.each([['koa', 'success'], ['express', 'failure']])('%s: a handler\'s report lands as a resource.event linked to the token', async (app, outcome) => {
    const token = await approveToken('exp_7');
    const res = await post(app, '/expenses/exp_7/approve', token);
    expect(res.status).toBe(200);
    const { seq } = await res.json() as { seq: number };
    expect(seq).toBeGreaterThan(0);
    const jti = decodeJwt(token).jti!;
    const [entry] = await resourceEvents(jti);
    expect(entry).toMatchObject({ seq, kind: 'resource.event', actor: EXPENSES });
    expect(entry!.payload).toMatchObject({ jti, outcome, action: 'approve', object: { type: 'Expense', id: 'exp_7' }, client_id: 'agent', user: { sub: 'alice' } });
    expect(typeof entry!.payload.exchange_seq).toBe('number');
  });

  it('reports a refusal of a valid token as denied', async () => {
    const token = await approveToken('exp_1');
    const res = await post('koa', '/expenses/exp_2/approve', token);
    expect(res.status).toBe(403);
    // The report is sent in the background; flushReports waits until it has been.
    await v.flushReports();
    const events = await resourceEvents(decodeJwt(token).jti!);
    expect(events).toHaveLength(1);
    expect(events[0]!.payload).toMatchObject({ outcome: 'denied', action: 'approve', object: { type: 'Expense', id: 'exp_2' } });
  });

  it('reports a scope refusal too, as the action "access" when the requirement names none', async () => {
    const token = await exchanged(w, { scope: 'expenses:read' });
    const err = await v.authenticate({ method: 'GET', url: `${EXPENSES}/x`, authorization: `Bearer ${token}` }, { scope: 'expenses:submit' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 403 });
    // authenticate() itself does not report; the middleware does.
    expect(await resourceEvents(decodeJwt(token).jti!)).toHaveLength(0);
    const app = new Koa();
    app.use(koaAuth(v, { scope: 'expenses:submit' }, { baseUrl: EXPENSES }));
    const s = await serve(app.callback());
    try {
      expect((await fetch(s.url, { headers: { authorization: `Bearer ${token}` } })).status).toBe(403);
    } finally {
      await s.close();
    }
    await v.flushReports();
    const [entry] = await resourceEvents(decodeJwt(token).jti!);
    expect(entry!.payload).toMatchObject({ outcome: 'denied', action: 'access' });
  });

  it('answers the 403 without waiting for the ledger, and the report still lands once it can be written', async () => {
    const credentials = { clientId: w.creds['expenses-rs']![0], clientSecret: w.creds['expenses-rs']![1] };
    // No introspection, so answering needs nothing from intentgate's database; reporting does.
    const quiet = createResourceVerifier({ issuer: w.t.issuer, resource: EXPENSES, credentials, introspection: false });
    const app = new Koa();
    app.use(koaAuth(quiet, (ctx) => approve(ctx.path.split('/')[2]!), { baseUrl: EXPENSES }));
    app.use((ctx) => { ctx.body = { ok: true }; });
    const s = await serve(app.callback());
    const token = await approveToken('exp_1');
    const jti = decodeJwt(token).jti!;
    try {
      expect((await fetch(`${s.url}/expenses/exp_1/approve`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })).status).toBe(200); // keys cached
      const db = w.t.server.db;
      const trx = await db.transaction();
      try {
        // Until this transaction ends no ledger entry can be written (on PGlite, no query at all runs).
        await trx.raw('LOCK TABLE ledger_entries IN EXCLUSIVE MODE');
        const res = await fetch(`${s.url}/expenses/exp_2/approve`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
        expect(res.status).toBe(403);
        const written = await trx('ledger_entries').where({ kind: 'resource.event', jti }).count<{ count: number | string }[]>({ count: '*' });
        expect(Number(written[0]!.count)).toBe(0);
      } finally {
        await trx.commit();
      }
      await quiet.flushReports();
      const events = await resourceEvents(jti);
      expect(events.map((e) => e.payload)).toMatchObject([{ outcome: 'denied', action: 'approve', object: { type: 'Expense', id: 'exp_2' } }]);
    } finally {
      await s.close();
    }
  });

  it('does not report what was never a valid token', async () => {
    const before = await w.t.admin('GET', '/admin/api/ledger?kind=resource.event&limit=200');
    const count = ((await before.json()) as { items: unknown[] }).items.length;
    const res = await post('koa', '/expenses/exp_1/approve', 'not.a.token');
    expect(res.status).toBe(401);
    const after = await w.t.admin('GET', '/admin/api/ledger?kind=resource.event&limit=200');
    expect(((await after.json()) as { items: unknown[] }).items).toHaveLength(count);
  });

  it('answers the refusal the same when the denial report fails', async () => {
    const token = await approveToken('exp_1');
    const db = w.t.server.db;
    // The ledger cannot be written (as with its insert privilege revoked); introspection still works.
    await db.raw(`CREATE FUNCTION refuse_resource_events() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'ledger is read-only'; END $$`);
    await db.raw('CREATE TRIGGER refuse_resource_events BEFORE INSERT ON ledger_entries FOR EACH ROW EXECUTE FUNCTION refuse_resource_events()');
    let res: Response;
    try {
      const access = await v.authenticate({ method: 'POST', url: `${EXPENSES}/x`, authorization: `Bearer ${token}` });
      await expect(v.report(access, { outcome: 'success', action: 'approve' })).rejects.toBeInstanceOf(ResourceReportError);
      res = await post('koa', '/expenses/exp_2/approve', token);
      // The report must have been tried (and refused) while the ledger refused writes.
      await v.flushReports();
    } finally {
      await db.raw('DROP TRIGGER refuse_resource_events ON ledger_entries');
      await db.raw('DROP FUNCTION refuse_resource_events()');
    }
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ error: 'insufficient_scope' });
    expect(await resourceEvents(decodeJwt(token).jti!)).toHaveLength(0);
  });

  it('throws a ResourceReportError naming the ledger\'s answer when it refuses', async () => {
    // A token for another resource: the ledger answers 403 to expenses-rs reporting on it.
    const hrToken = await exchanged(w, { resource: HR, scope: 'hr:read' });
    const hr = createResourceVerifier({ issuer: w.t.issuer, resource: HR, introspection: false });
    const hrAccess = await hr.authenticate({ method: 'GET', url: `${HR}/x`, authorization: `Bearer ${hrToken}` });
    const err = await v.report(hrAccess, { outcome: 'success', action: 'read' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResourceReportError);
    expect(err).toMatchObject({ status: 403, error: 'access_denied' });
    // An event the ledger's schema refuses.
    const access = await v.authenticate({ method: 'GET', url: `${EXPENSES}/x`, authorization: `Bearer ${await exchanged(w)}` });
    await expect(v.report(access, { outcome: 'success', action: 'Not An Action' })).rejects.toMatchObject({ status: 400, error: 'invalid_request' });
    // And a verifier without credentials cannot report at all.
    await expect(hr.report(hrAccess, { outcome: 'success', action: 'read' })).rejects.toThrow(/credentials/);
  });
});
