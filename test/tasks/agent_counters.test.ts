import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { details, exchangeParams, startWorld, type World } from '../helpers/world.ts';


// Each test makes many exchanges; PGlite on a loaded 2-core machine is slow (no timing is asserted).
vi.setConfig({ testTimeout: 180_000 });
let w: World;
let reviewerToken: string;
beforeAll(async () => {
  w = await startWorld({ policy: { file: path.resolve('test/fixtures/policy/agent_counters.yaml') }, rate_limits: { token: { burst: 100_000, per_second: 100_000 } } });
  reviewerToken = ((await (await w.t.admin('POST', '/admin/api/admins', { name: 'rita', role: 'reviewer', user: { issuer: 'https://idp.test', sub: 'rita' } })).json()) as { token: string }).token;
}, 180_000);
afterAll(async () => { await w?.t.stop(); });

async function first(client: string, sub: string, extra: Record<string, string> = {}): Promise<Response> {
  return w.exchange(client, exchangeParams(await w.userToken({ sub }), extra));
}

function introspect(jwt: string): Promise<boolean> {
  return fetch(`${w.t.url}/token/introspection`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(w.creds['expenses-rs']!.join(':')).toString('base64')}` },
    body: new URLSearchParams({ token: jwt }),
  }).then(async (r) => ((await r.json()) as { active: boolean }).active);
}

interface Review { id: string; kind: string; status: string; client_id: string; user: { sub: string }; context: { reasons: string[]; evidence: Record<string, unknown>; hold: unknown } }

describe('behaviour counters per (agent, user), across tasks', () => {
  it('suspends an agent for a user after repeated refusals on first exchanges, each in a task of its own', async () => {
    const earlier = await first('agent', 'uma');
    expect(earlier.status).toBe(200);
    const { access_token: earlierToken } = await earlier.json() as { access_token: string };
    const tasks = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const refused = await first('agent', 'uma', { scope: 'expenses:submit' }); // no detail: no rule allows it
      expect(refused.status).toBe(400);
      expect(await refused.json()).toMatchObject({ reasons: ['no_matching_rule'] });
    }
    const denials = await (await w.t.admin('GET', '/admin/api/ledger?kind=exchange.denied&subject=uma')).json() as { items: Array<{ payload: { task: string } }> };
    for (const e of denials.items) tasks.add(e.payload.task);
    expect(tasks.size).toBe(3); // three tasks: the per-task counter (2 refusals) never tripped

    // The agent is now held for uma: every exchange it asks on her behalf is refused, and her live tokens from it are revoked.
    const after = await first('agent', 'uma');
    expect(after.status).toBe(400);
    const body = await after.json() as { error: string; reasons: string[]; review_id: string };
    expect(body).toMatchObject({ error: 'access_denied', reasons: ['agent_suspended'] });
    expect(body.review_id).toMatch(/^rev_/);
    expect(await introspect(earlierToken)).toBe(false);
    // Only this agent, only for this user.
    expect((await first('agent', 'vic')).status).toBe(200);
    expect((await first('other-agent', 'uma')).status).toBe(200);

    const reviews = await (await w.t.admin('GET', '/admin/api/reviews?status=pending')).json() as { items: Review[] };
    const review = reviews.items.find((r) => r.id === body.review_id)!;
    expect(review).toMatchObject({ kind: 'agent_suspension', client_id: 'agent', user: { sub: 'uma' }, context: { reasons: ['agent-refused-repeatedly'] } });
    expect(review.context.evidence).toMatchObject({ denials: 3, within_seconds: 600, per: 'agent', client_id: 'agent' });
    const opened = await (await w.t.admin('GET', '/admin/api/ledger?kind=review.opened&client_id=agent')).json() as { items: Array<{ payload: { review_id: string; evidence: Record<string, unknown> } }> };
    expect(opened.items.find((e) => e.payload.review_id === review.id)!.payload.evidence).toMatchObject({ denials: 3, per: 'agent', revoked: [expect.any(String)] });
    const approved = await w.t.admin('POST', `/admin/api/reviews/${review.id}/approve`, { comment: 'looked at it' }, reviewerToken);
    expect(approved.status).toBe(200);
    expect((await first('agent', 'uma')).status).toBe(200);
  });

  it('downgrades an agent for a user that keeps starting tasks (volume across tasks)', async () => {
    for (let i = 0; i < 5; i++) expect((await first('agent', 'wes')).status).toBe(200);
    const submit = await first('agent', 'wes', { scope: 'expenses:submit', authorization_details: details('submit', { type: 'Expense', id: 'exp_w1', amount: 5 }) });
    expect(submit.status).toBe(400);
    expect(await submit.json()).toMatchObject({ error: 'access_denied', reasons: ['agent_downgraded'] });
    expect((await first('agent', 'wes')).status).toBe(200);
    // Another user of the same agent is not affected.
    expect((await first('agent', 'xia', { scope: 'expenses:submit', authorization_details: details('submit', { type: 'Expense', id: 'exp_x1', amount: 5 }) })).status).toBe(200);
    const entry = await (await w.t.admin('GET', '/admin/api/ledger?kind=agent.downgraded')).json() as { items: Array<{ payload: Record<string, unknown> }> };
    expect(entry.items[0]!.payload).toMatchObject({ client_id: 'agent', user: { sub: 'wes' }, rule: 'agent-busy', evidence: { grants: 5, per: 'agent' } });
  });
});
