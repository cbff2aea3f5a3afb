import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { startServer } from '../../src/server.ts';
import { freePort, onPostgres, tokenRequest } from '../helpers/server.ts';
import { ACCESS_TOKEN_TYPE, details, exchangeParams, reportEvent, startWorld, TOKEN_EXCHANGE, type World } from '../helpers/world.ts';

let w: World;
beforeAll(async () => {
  w = await startWorld({ policy: { file: path.resolve('test/fixtures/policy/sod.yaml') }, rate_limits: { token: { burst: 100_000, per_second: 100_000 } } });
});
afterAll(async () => { await w?.t.stop(); });

function act(action: 'submit' | 'approve', id: string, sub = 'alice', client = 'agent'): Promise<Response> {
  return (async () => w.exchange(client, exchangeParams(await w.userToken({ sub }), {
    scope: `expenses:${action}`, intent: `${action} expense ${id}`, authorization_details: details(action, { type: 'Expense', id, amount: 120 }),
  })))();
}

describe('separation of duties (seed scenario 1)', () => {
  it('denies a manager\'s agent approving the expense it submitted, and allows approving someone else\'s', async () => {
    expect((await act('submit', 'exp_100')).status).toBe(200);
    const own = await act('approve', 'exp_100');
    expect(own.status).toBe(400);
    expect(await own.json()).toMatchObject({ error: 'access_denied', reasons: ['separation_of_duties'] });

    expect((await act('submit', 'exp_200', 'bob')).status).toBe(200);
    expect((await act('approve', 'exp_200')).status).toBe(200);
    // History is the user's, not the agent's: another agent of alice's is refused too.
    const viaOtherAgent = await w.exchange('agent', exchangeParams(await w.userToken({ sub: 'alice' }), {
      scope: 'expenses:approve', intent: 'approve again', authorization_details: details('approve', { type: 'Expense', id: 'exp_100', amount: 120 }),
    }));
    expect(viaOtherAgent.status).toBe(400);
    // And in the other direction: what alice approved, she may not (re)submit.
    const resubmit = await act('submit', 'exp_200');
    expect(await resubmit.json()).toMatchObject({ reasons: ['separation_of_duties'] });
  });

  it('counts what a resource server reported as done, e.g. an expense a call created', async () => {
    // The agent had a token to create expenses in general (no object id); the resource server reports what it created.
    const res = await w.exchange('agent', exchangeParams(await w.userToken({ sub: 'alice' }), {
      scope: 'expenses:submit', intent: 'file a new expense', authorization_details: details('submit', { type: 'Expense', amount: 80 }),
    }));
    expect(res.status).toBe(200);
    const { access_token } = await res.json() as { access_token: string };
    const { decodeJwt } = await import('jose');
    const event = await reportEvent(w, 'expenses-rs', { jti: decodeJwt(access_token).jti, outcome: 'success', action: 'submit', object: { type: 'Expense', id: 'exp_created_77', created: true } });
    expect(event.status).toBe(201);
    const approve = await act('approve', 'exp_created_77');
    expect(await approve.json()).toMatchObject({ error: 'access_denied', reasons: ['separation_of_duties'] });
  });

  it('limits actions per task from the task\'s own history', async () => {
    // The delegation carries the submissions the sub-agent may make (no hop adds details).
    const submits = ['exp_t1', 'exp_t2', 'exp_t3'].map((id) => JSON.parse(details('submit', { type: 'Expense', id, amount: 5 }))[0]);
    const params = exchangeParams(await w.userToken({ sub: 'gina' }), {
      audience: 'sub-agent', scope: 'expenses:read expenses:submit', intent: 'delegate submissions', authorization_details: JSON.stringify(submits),
    });
    delete params.resource;
    const delegation = await w.exchange('agent', params);
    expect(delegation.status).toBe(200);
    const { access_token: parent } = await delegation.json() as { access_token: string };
    const submit = (id: string) => w.exchange('sub-agent', {
      subject_token: parent, subject_token_type: ACCESS_TOKEN_TYPE, resource: 'https://expenses.example', scope: 'expenses:submit',
      intent: `submit ${id}`, authorization_details: details('submit', { type: 'Expense', id, amount: 5 }),
    });
    expect((await submit('exp_t1')).status).toBe(200);
    expect((await submit('exp_t2')).status).toBe(200);
    const third = await submit('exp_t3');
    expect(third.status).toBe(400);
    expect(await third.json()).toMatchObject({ error: 'access_denied', reasons: ['task_submit_limit'] });
  });

  it('decides a task start on the same history, per resource of the task', async () => {
    const start = async (id: string) => w.exchange('agent', {
      ...exchangeParams(await w.userToken({ sub: 'iris' }), {
        scope: 'hr:read expenses:approve', intent: `approve expense ${id}`, authorization_details: details('approve', { type: 'Expense', id, amount: 120 }),
      }),
      requested_token_type: 'urn:intentgate:token-type:task',
      // The resource whose history decides comes second: each resource is decided on its own history.
      resource: ['https://hr.example', 'https://expenses.example'],
    });
    expect((await act('submit', 'exp_task_1', 'iris')).status).toBe(200);
    const own = await start('exp_task_1');
    expect(own.status).toBe(400);
    expect(await own.json()).toMatchObject({ error: 'access_denied', reasons: ['separation_of_duties'] });
    expect((await act('submit', 'exp_task_2', 'bob')).status).toBe(200);
    const other = await start('exp_task_2');
    expect(other.status).toBe(200);
  });

  it('never grants both of two concurrent conflicting requests (submit X and approve X)', async () => {
    const pairs = await Promise.all(Array.from({ length: 12 }, async (_, i) => {
      const id = `exp_race_${i}`;
      const [s, a] = await Promise.all([act('submit', id, 'hank'), act('approve', id, 'hank')]);
      return [s.status, a.status];
    }));
    for (const [s, a] of pairs) {
      expect([s, a].filter((x) => x === 200)).toHaveLength(1);
    }
  });
});

describe('history rules under concurrency', () => {
  // Before the per-user locks moved off the request pool, 64 users in flight at once held every pooled
  // connection with a lock and waited for another one: nothing moved until the pool timed out (503s).
  it('decides 64 exchanges fired at once by 64 distinct users, three times over, with no 5xx', async () => {
    for (let round = 0; round < 3; round++) {
      const tokens = await Promise.all(Array.from({ length: 64 }, (_, i) => w.userToken({ sub: `load-${round}-${i}` })));
      const answers = await Promise.all(tokens.map((token, i) => w.exchange('agent', exchangeParams(token, {
        scope: 'expenses:approve', intent: `approve expense ${round}-${i}`,
        authorization_details: details('approve', { type: 'Expense', id: `exp_load_${round}_${i}`, amount: 10 }),
      }))));
      const statuses = answers.map((r) => r.status);
      expect(statuses.filter((s) => s >= 500)).toEqual([]);
      // Each user approves an expense nobody submitted: every one of them is granted.
      expect(statuses.every((s) => s === 200)).toBe(true);
    }
  });
});

describe.skipIf(!onPostgres)('history rules across two instances on one database (PostgreSQL only)', () => {
  it('never grants both of submit X on one instance and approve X on the other', async () => {
    const port = await freePort();
    const second = await startServer(loadConfig('development', { ...w.t.env, PORT: String(port) }, {
      policy: { file: path.resolve('test/fixtures/policy/sod.yaml') }, development_issuer: false, rate_limits: { token: { burst: 100_000, per_second: 100_000 } },
    }));
    try {
      const on = async (url: string, action: 'submit' | 'approve', id: string) => tokenRequest(url, {
        grant_type: TOKEN_EXCHANGE, ...exchangeParams(await w.userToken({ sub: 'ivy' }), {
          scope: `expenses:${action}`, intent: `${action} expense ${id}`, authorization_details: details(action, { type: 'Expense', id, amount: 30 }),
        }),
      }, w.creds.agent);
      const pairs = await Promise.all(Array.from({ length: 16 }, async (_, i) => {
        const id = `exp_two_${i}`;
        const [s, a] = await Promise.all([on(w.t.url, 'submit', id), on(second.url, 'approve', id)]);
        return [s.status, a.status];
      }));
      for (const pair of pairs) expect(pair.filter((x) => x === 200)).toHaveLength(1);
    } finally {
      await second.close();
    }
  });
});
