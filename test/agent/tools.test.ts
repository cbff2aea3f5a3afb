import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentInputError, ExchangeDenied, type Agent } from '@intentgate/agent';
import { entriesOf } from '../helpers/ledger.ts';
import { EXPENSES, startWorld, type World } from '../helpers/world.ts';
import { agentFor, ledgerCount } from './helpers.ts';

let w: World;
let agent: Agent;
beforeAll(async () => {
  w = await startWorld({ rate_limits: { token: { burst: 100_000, per_second: 100_000 } } });
  agent = await agentFor(w);
});
afterAll(async () => { await w?.t.stop(); });

interface ApproveArgs { id: string; amount: number; note?: string; tags?: string[] }

async function expenseTools(extra: { refreshBeforeExpirySeconds?: number } = {}) {
  const subjectToken = await w.userToken();
  return agent.tools({
    subjectToken,
    resource: EXPENSES,
    intent: 'Work through the expense queue',
    // These tests are about direct exchanges per call (test/agent/task.test.ts covers tools() in a task).
    task: false,
    ...extra,
    tools: {
      approve_expense: {
        scope: 'expenses:approve',
        action: 'approve',
        object: (args: ApproveArgs) => ({ type: 'Expense', id: args.id, amount: args.amount }),
        purpose: 'expense_approval',
        intent: (args: ApproveArgs) => `Approve expense ${args.id}`,
      },
      list_expenses: { scope: ['expenses:read'], action: 'list' },
    },
  });
}

describe('tokens per tool call', () => {
  it('exchanges once per call signature and reuses the token for the same arguments, in any key order', async () => {
    const tools = await expenseTools();
    const before = await ledgerCount(w, 'exchange.granted');
    const first = await tools.tokenFor('approve_expense', { id: 'exp_1', amount: 120, tags: ['taxi'] });
    expect(decodeJwt(first.accessToken)).toMatchObject({
      scope: 'expenses:approve', aud: EXPENSES,
      authorization_details: [{ type: 'tool_call', tool: 'approve_expense', action: 'approve', object: { type: 'Expense', id: 'exp_1', amount: 120 }, purpose: 'expense_approval' }],
    });
    const again = await tools.tokenFor('approve_expense', { tags: ['taxi'], amount: 120, id: 'exp_1' });
    expect(again.accessToken).toBe(first.accessToken);
    expect(first.resource).toBe(EXPENSES);
    expect(await ledgerCount(w, 'exchange.granted')).toBe(before + 1);

    // Any difference in the arguments is another call, even one the details do not show.
    const other = await tools.tokenFor('approve_expense', { id: 'exp_2', amount: 120, tags: ['taxi'] });
    expect(other.accessToken).not.toBe(first.accessToken);
    expect(decodeJwt(other.accessToken).authorization_details).toMatchObject([{ object: { id: 'exp_2' } }]);
    const noted = await tools.tokenFor('approve_expense', { id: 'exp_1', amount: 120, tags: ['taxi'], note: 'receipt checked' });
    expect(noted.accessToken).not.toBe(first.accessToken);
    expect(await ledgerCount(w, 'exchange.granted')).toBe(before + 3);

    // Another tool with the same arguments, or another subject token, is another signature too.
    const listing = await tools.tokenFor('list_expenses', {});
    expect(decodeJwt(listing.accessToken)).toMatchObject({ scope: 'expenses:read', authorization_details: [{ type: 'tool_call', action: 'list' }] });
    const otherSubject = await expenseTools();
    expect((await otherSubject.tokenFor('approve_expense', { id: 'exp_1', amount: 120, tags: ['taxi'] })).accessToken).not.toBe(first.accessToken);
  });

  it('records the intent the tool derives from the arguments, or the one the call gives', async () => {
    const tools = await expenseTools();
    const derived = await tools.tokenFor('approve_expense', { id: 'exp_7', amount: 10 });
    const given = await tools.tokenFor('approve_expense', { id: 'exp_8', amount: 10 }, { intent: 'Approve the coffee for the offsite' });
    const granted = await entriesOf(w.t.server.db, 'exchange.granted');
    expect(granted.find((e) => e.payload.jti === decodeJwt(derived.accessToken).jti)?.payload.intent).toBe('Approve expense exp_7');
    expect(granted.find((e) => e.payload.jti === decodeJwt(given.accessToken).jti)?.payload.intent).toBe('Approve the coffee for the offsite');
  });

  it('reuses a token only for the same intent, so the ledger records the intent of every use', async () => {
    const tools = await expenseTools();
    const before = await ledgerCount(w, 'exchange.granted');
    const taxi = await tools.tokenFor('list_expenses', {}, { intent: 'Find the open taxi claims' });
    expect((await tools.tokenFor('list_expenses', {}, { intent: 'Find the open taxi claims' })).accessToken).toBe(taxi.accessToken);
    const duplicates = await tools.tokenFor('list_expenses', {}, { intent: 'Find duplicate claims' });
    expect(duplicates.accessToken).not.toBe(taxi.accessToken);
    // The default intent is an intent of its own.
    const queue = await tools.tokenFor('list_expenses', {});
    expect(new Set([taxi, duplicates, queue].map((t) => t.accessToken)).size).toBe(3);
    // Concurrent calls share an exchange only when their intents agree too.
    const [a, b] = await Promise.all([
      tools.tokenFor('list_expenses', {}, { intent: 'Page through the claims' }),
      tools.tokenFor('list_expenses', {}, { intent: 'Count the claims' }),
    ]);
    expect(a.accessToken).not.toBe(b.accessToken);
    expect(await ledgerCount(w, 'exchange.granted')).toBe(before + 5);
    const granted = await entriesOf(w.t.server.db, 'exchange.granted');
    const intentOf = (t: { accessToken: string }) => granted.find((e) => e.payload.jti === decodeJwt(t.accessToken).jti)?.payload.intent;
    expect([taxi, duplicates, queue, a, b].map(intentOf)).toEqual(['Find the open taxi claims', 'Find duplicate claims', 'Work through the expense queue', 'Page through the claims', 'Count the claims']);
  });

  it('exchanges again when the cached token is within refreshBeforeExpirySeconds of expiring', async () => {
    // The approve token lives 120 s: asking for 1000 s of margin means it is always too close to expiry.
    const tools = await expenseTools({ refreshBeforeExpirySeconds: 1000 });
    const before = await ledgerCount(w, 'exchange.granted');
    const first = await tools.tokenFor('approve_expense', { id: 'exp_3', amount: 50 });
    const second = await tools.tokenFor('approve_expense', { id: 'exp_3', amount: 50 });
    expect(second.accessToken).not.toBe(first.accessToken);
    expect(await ledgerCount(w, 'exchange.granted')).toBe(before + 2);
  });

  it('shares one in-flight exchange among concurrent calls with the same signature', async () => {
    const tools = await expenseTools();
    const before = await ledgerCount(w, 'exchange.granted');
    const tokens = await Promise.all(Array.from({ length: 5 }, () => tools.tokenFor('approve_expense', { id: 'exp_4', amount: 75 })));
    expect(new Set(tokens.map((t) => t.accessToken)).size).toBe(1);
    expect(await ledgerCount(w, 'exchange.granted')).toBe(before + 1);
  });

  it('never caches a denial: each call asks again and is refused again', async () => {
    const tools = await expenseTools();
    const before = await ledgerCount(w, 'exchange.denied');
    for (let i = 0; i < 2; i++) {
      const err = await tools.tokenFor('approve_expense', { id: 'exp_big', amount: 5000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ExchangeDenied);
      expect(err).toMatchObject({ reasons: ['approval_limit_exceeded'] });
    }
    expect(await ledgerCount(w, 'exchange.denied')).toBe(before + 2);
  });

  it('refuses an unknown tool, a call without an intent and bad arguments before any request', async () => {
    const tools = await expenseTools();
    const before = (await ledgerCount(w, 'exchange.granted')) + (await ledgerCount(w, 'exchange.denied'));
    await expect(tools.tokenFor('delete_expense' as 'list_expenses', {})).rejects.toMatchObject({ name: 'AgentInputError', field: 'tool', message: expect.stringContaining('delete_expense') });
    await expect(tools.tokenFor('list_expenses', {})).resolves.toBeDefined();
    const noIntent = agent.tools({ subjectToken: 't', resource: EXPENSES, tools: { list_expenses: { scope: 'expenses:read', action: 'list' } } });
    await expect(noIntent.tokenFor('list_expenses', {})).rejects.toMatchObject({ field: 'intent' });
    await expect(tools.tokenFor('approve_expense', { id: 'exp_5', amount: Number.NaN })).rejects.toMatchObject({ field: 'args.amount' });
    const circular: Record<string, unknown> = { id: 'exp_6', amount: 1 };
    circular.self = circular;
    await expect(tools.tokenFor('approve_expense', circular as unknown as ApproveArgs)).rejects.toMatchObject({ field: 'args.self' });
    await expect(tools.tokenFor('approve_expense', { id: 'x'.repeat(70_000), amount: 1 })).rejects.toBeInstanceOf(AgentInputError);
    await expect(tools.tokenFor('approve_expense', { id: 'exp_6', amount: 1, when: new Date() } as unknown as ApproveArgs)).rejects.toMatchObject({ field: 'args.when' });
    // The one call above that was fine is the only exchange.
    expect((await ledgerCount(w, 'exchange.granted')) + (await ledgerCount(w, 'exchange.denied'))).toBe(before + 1);

    expect(() => agent.tools({ subjectToken: 't', tools: { a: { scope: 's', action: 'x' } } })).toThrow(/resource or an audience/);
    expect(() => agent.tools({ subjectToken: 't', resource: EXPENSES, tools: { a: { scope: '', action: 'x' } } })).toThrow(AgentInputError);
    expect(() => agent.tools({ subjectToken: 't', resource: EXPENSES, tools: {} })).toThrow(/at least one tool/);
    expect(() => agent.tools({ subjectToken: 't', resource: EXPENSES, refreshBeforeExpirySeconds: -1, tools: { a: { scope: 's', action: 'x' } } })).toThrow(/refreshBeforeExpirySeconds/);
  });
});
