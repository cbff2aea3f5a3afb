import Koa from 'koa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createResourceVerifier, type ResourceVerifier } from '@intentgate/resource';
import { koaAuth } from '@intentgate/resource/koa';
import { startServer } from '../../src/server.ts';
import { basicAuth } from '../helpers/server.ts';
import { EXPENSES, startWorld, type World } from '../helpers/world.ts';
import { exchanged, serve, type Served } from './helpers.ts';

let w: World;
let app: Served;
let v: ResourceVerifier;

beforeAll(async () => {
  w = await startWorld();
  v = createResourceVerifier({
    issuer: w.t.issuer, resource: EXPENSES, introspection: { cacheSeconds: 0 },
    credentials: { clientId: w.creds['expenses-rs']![0], clientSecret: w.creds['expenses-rs']![1] },
  });
  const koa = new Koa();
  koa.use(koaAuth(v, { scope: 'expenses:read' }, { baseUrl: EXPENSES }));
  koa.use((ctx) => { ctx.body = { ok: true }; });
  app = await serve(koa.callback());
});
afterAll(async () => {
  await app?.close();
  await w?.t.stop();
});

const get = (token: string) => fetch(`${app.url}/expenses`, { headers: { authorization: `Bearer ${token}` } });

async function expectUnavailable(res: Response): Promise<void> {
  expect(res.status).toBe(503);
  expect(res.headers.get('retry-after')).toBe('5');
  expect(res.headers.get('cache-control')).toBe('no-store');
  expect(await res.json()).toEqual({ error: 'temporarily_unavailable', error_description: 'token status could not be checked with the authorization server' });
}

describe('when introspection is unavailable, the token is refused (fail closed)', () => {
  it('answers 503 while intentgate is down, and accepts again once it is back', async () => {
    const token = await exchanged(w);
    expect((await get(token)).status).toBe(200); // the signing keys are now cached, as in a running RS
    await w.t.server.close();
    try {
      await expectUnavailable(await get(token));
    } finally {
      w.t.server = await startServer(w.t.config);
    }
    expect((await get(token)).status).toBe(200);
  });

  it('answers 503 when intentgate answers introspection with a server error', async () => {
    const token = await exchanged(w);
    const db = w.t.server.db;
    // A real fault inside intentgate: the table introspection reads is gone, so it answers 500.
    await db.raw('ALTER TABLE issued_tokens RENAME TO issued_tokens_away');
    try {
      const direct = await fetch(`${w.t.url}/token/introspection`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth(...w.creds['expenses-rs']!) },
        body: new URLSearchParams({ token }),
      });
      expect(direct.status).toBeGreaterThanOrEqual(500);
      await expectUnavailable(await get(token));
    } finally {
      await db.raw('ALTER TABLE issued_tokens_away RENAME TO issued_tokens');
    }
    expect((await get(token)).status).toBe(200);
  });

  it('answers 503 when the signing keys cannot be fetched, never accepting an unverified token', async () => {
    const token = await exchanged(w);
    const cold = createResourceVerifier({ issuer: w.t.issuer, resource: EXPENSES, introspection: false, jwksUri: `${app.url}/no-jwks-here` });
    await expect(cold.authenticate({ method: 'GET', url: `${EXPENSES}/x`, authorization: `Bearer ${token}` }))
      .rejects.toMatchObject({ status: 503, error: 'temporarily_unavailable' });
  });
});
