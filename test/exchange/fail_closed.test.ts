import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exchangeParams, startWorld, type World } from '../helpers/world.ts';
import { entriesOf } from '../helpers/ledger.ts';

let w: World;
beforeAll(async () => { w = await startWorld(); });
afterAll(async () => { await w?.t.stop(); });

describe('fail closed', () => {
  it('issues no token when its ledger entry cannot be written, and every token issued has its entry', async () => {
    const db = w.t.server.db;
    const tokensBefore = await db('issued_tokens').count({ n: '*' }).first();
    // The ledger write fails inside the database, as it would with the insert privilege revoked.
    await db.raw(`CREATE FUNCTION refuse_ledger() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'ledger is read-only'; END $$`);
    await db.raw('CREATE TRIGGER refuse_ledger BEFORE INSERT ON ledger_entries FOR EACH ROW EXECUTE FUNCTION refuse_ledger()');
    try {
      const res = await w.exchange('agent', exchangeParams(await w.userToken()));
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('5');
      const body = await res.json() as Record<string, unknown>;
      expect(body).toMatchObject({ error: 'temporarily_unavailable' });
      expect(body).not.toHaveProperty('access_token');
      // The token row was in the same transaction, so it is gone too.
      expect(await db('issued_tokens').count({ n: '*' }).first()).toEqual(tokensBefore);
      // A denial that cannot be recorded is not answered as a plain denial either.
      const denied = await w.exchange('agent', exchangeParams(await w.userToken(), { scope: 'expenses:submit' }));
      expect(denied.status).toBe(503);
    } finally {
      await db.raw('DROP TRIGGER refuse_ledger ON ledger_entries');
      await db.raw('DROP FUNCTION refuse_ledger()');
    }
    const res = await w.exchange('agent', exchangeParams(await w.userToken()));
    expect(res.status).toBe(200);
    const issued = await db('issued_tokens').select('jti');
    const entries = [...await entriesOf(db, 'exchange.granted'), ...await entriesOf(db, 'token.issued')];
    const recorded = new Set(entries.map((e) => (e.payload as { jti: string }).jti));
    for (const { jti } of issued) expect(recorded.has(jti)).toBe(true);
  });
});
