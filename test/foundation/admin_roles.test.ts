import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lastEntry } from '../helpers/ledger.ts';
import { reviewerToken } from '../helpers/server.ts';
import { details, exchangeParams, IDP, startWorld, type World } from '../helpers/world.ts';

type Role = 'admin' | 'reviewer' | 'auditor';
interface Credential { id: string; token: string; role: Role }

let w: World;
const as: Partial<Record<Role, Credential>> = {};
beforeAll(async () => {
  w = await startWorld({
    policy: { file: path.resolve('test/fixtures/policy/review.yaml') },
    rate_limits: { token: { burst: 100_000, per_second: 100_000 }, admin: { burst: 100_000, per_second: 100_000 } },
  });
  for (const role of ['admin', 'reviewer', 'auditor'] as const) {
    const res = await w.t.admin('POST', '/admin/api/admins', { name: `the ${role}`, role, user: { issuer: IDP, sub: `${role}-person` } });
    expect(res.status).toBe(201);
    as[role] = await res.json() as Credential;
  }
});
afterAll(async () => { await w?.t.stop(); });

async function create(body: Record<string, unknown>, token?: string): Promise<Credential> {
  const res = await w.t.admin('POST', '/admin/api/admins', body, token);
  if (res.status !== 201) throw new Error(`create ${JSON.stringify(body)}: ${res.status} ${await res.text()}`);
  return res.json() as Promise<Credential>;
}

/** A large approval alice's agent asks for: the review policy sends it to a person. Its review id. */
async function pendingReviewFor(sub: string, expenseId: string): Promise<string> {
  const res = await w.exchange('agent', exchangeParams(await w.userToken({ sub }), {
    scope: 'expenses:approve', intent: 'Approve the big one', authorization_details: details('approve', { type: 'Expense', id: expenseId, amount: 5000 }),
  }));
  const body = await res.json() as { error: string; review_id: string };
  expect(body.error).toBe('authorization_pending');
  return body.review_id;
}

function decide(reviewId: string, token: string, verdict: 'approve' | 'deny' = 'approve'): Promise<Response> {
  return w.t.admin('POST', `/admin/api/reviews/${reviewId}/${verdict}`, { comment: 'looks fine' }, token);
}

async function expectAccessDenied(res: Response): Promise<void> {
  expect(res.status).toBe(403);
  const body = await res.json() as { error: string; error_description: string };
  expect(body.error).toBe('access_denied');
  expect(body.error_description).toMatch(/\S/);
}

describe('self-review through a second credential (issue #10, item 6)', () => {
  it('an admin bound to alice cannot approve her request through any credential she creates', async () => {
    const alice = await create({ name: 'alice', role: 'admin', user: { issuer: IDP, sub: 'alice' } });
    const reviewId = await pendingReviewFor('alice', 'exp_self_1');

    // Directly: refused.
    await expectAccessDenied(await decide(reviewId, alice.token));
    // The attack: a second credential, bound to a made-up person, made by alice.
    const fakeBob = await create({ name: 'bob', role: 'reviewer', user: { issuer: IDP, sub: 'bob' } }, alice.token);
    await expectAccessDenied(await decide(reviewId, fakeBob.token));
    await expectAccessDenied(await decide(reviewId, fakeBob.token, 'deny'));
    // Longer chains: an admin-role credential bound to nobody, which makes another reviewer; still alice's.
    const unbound = await create({ name: 'automation' }, alice.token);
    const fakeCarol = await create({ name: 'carol', role: 'reviewer', user: { issuer: IDP, sub: 'carol' } }, unbound.token);
    await expectAccessDenied(await decide(reviewId, fakeCarol.token));
    const fakeDan = await create({ name: 'dan', role: 'admin', user: { issuer: IDP, sub: 'dan' } }, alice.token);
    const fakeEve = await create({ name: 'eve', role: 'reviewer', user: { issuer: IDP, sub: 'eve' } }, fakeDan.token);
    await expectAccessDenied(await decide(reviewId, fakeEve.token));
    // Revoking alice's credential does not clean the chain of what it made.
    expect((await w.t.admin('DELETE', `/admin/api/admins/${alice.id}`)).status).toBe(204);
    await expectAccessDenied(await decide(reviewId, fakeBob.token));
    // An unbound credential never decides: it could be anybody, alice included.
    await expectAccessDenied(await decide(reviewId, unbound.token));
    await expectAccessDenied(await decide(reviewId, w.t.adminToken));

    // Nothing was decided: the agent still waits, and the review is pending.
    const review = (await (await w.t.admin('GET', '/admin/api/reviews?status=pending')).json() as { items: Array<{ id: string }> }).items.find((r) => r.id === reviewId);
    expect(review).toBeDefined();

    // Someone else, provisioned outside alice's chain, can decide it; a same-named sub at another issuer is another person.
    const rita = await reviewerToken(w.t, 'https://other-idp.test', 'alice');
    expect((await decide(reviewId, rita)).status).toBe(200);
    expect((await lastEntry(w.t.server.db, 'review.approved')).payload).toMatchObject({ review_id: reviewId });
  });

  it('credentials a person made still decide other people\'s requests', async () => {
    const alice = await create({ name: 'alice again', role: 'admin', user: { issuer: IDP, sub: 'alice' } });
    const bobReviewer = await create({ name: 'bob (by alice)', role: 'reviewer', user: { issuer: IDP, sub: 'bob' } }, alice.token);
    const reviewId = await pendingReviewFor('zoe', 'exp_zoe_1');
    expect((await decide(reviewId, bobReviewer.token, 'deny')).status).toBe(200);
  });
});

describe('what each role may call', () => {
  const nope = encodeURIComponent('https://nope.example');
  // [method, path, body]; role gates run before the body is read, so bodies are what an honest caller would send.
  const endpoints: Array<[string, string, unknown?]> = [
    ['GET', '/admin/api/admins'],
    ['POST', '/admin/api/admins', { name: 'made by a role', role: 'auditor' }],
    ['PATCH', '/admin/api/admins/adm_nope', { role: 'auditor' }],
    ['DELETE', '/admin/api/admins/adm_nope'],
    ['GET', '/admin/api/clients'],
    ['GET', '/admin/api/clients/nope'],
    ['POST', '/admin/api/clients', { scope: 'expenses:read' }],
    ['PATCH', '/admin/api/clients/nope', { client_name: 'x' }],
    ['DELETE', '/admin/api/clients/nope'],
    ['POST', '/admin/api/clients/nope/secret', {}],
    ['GET', '/admin/api/resources'],
    ['GET', `/admin/api/resources/${nope}`],
    ['POST', '/admin/api/resources', { identifier: 'https://x.example', name: 'x' }],
    ['PATCH', `/admin/api/resources/${nope}`, { name: 'y' }],
    ['DELETE', `/admin/api/resources/${nope}`],
    ['GET', '/admin/api/issuers'],
    ['GET', `/admin/api/issuers/${nope}`],
    ['POST', '/admin/api/issuers', { issuer: 'https://nope.example' }],
    ['PATCH', `/admin/api/issuers/${nope}`, { audiences: ['x'] }],
    ['DELETE', `/admin/api/issuers/${nope}`],
    ['GET', '/admin/api/policies'],
    ['GET', '/admin/api/policies/current'],
    ['POST', '/admin/api/policies', { document: 'not: a policy' }],
    ['POST', '/admin/api/policies/simulate', { client_id: 'agent', user: { issuer: IDP, sub: 'alice' }, resource: 'https://expenses.example', scope: 'expenses:read' }],
    ['POST', '/admin/api/policies/replay', { document: 'not: a policy' }],
    ['GET', '/admin/api/ledger'],
    ['POST', '/admin/api/ledger/checkpoint', {}],
    ['POST', '/admin/api/revocations', { jti: 'nope' }],
    ['GET', '/admin/api/tasks/nope'],
    ['GET', '/admin/api/reviews'],
    ['POST', '/admin/api/reviews/rev_nope/approve', {}],
    ['POST', '/admin/api/reviews/rev_nope/deny', {}],
    ['GET', '/admin/api/keys'],
    ['POST', '/admin/api/keys/rotate', { overlap_seconds: -1 }],
  ];
  const reads = (m: string, p: string) => m === 'GET' || p.endsWith('/simulate') || p.endsWith('/replay');
  const allowed: Record<Role, (m: string, p: string) => boolean> = {
    admin: () => true,
    reviewer: (m, p) => reads(m, p) || /^\/admin\/api\/reviews\/[^/]+\/(approve|deny)$/.test(p),
    auditor: reads,
  };
  const cases = (['admin', 'reviewer', 'auditor'] as const).flatMap((role) => endpoints.map(([m, p, b]) => [role, m, p, b, allowed[role](m, p)] as const));

  it.each(cases)('%s: %s %s', async (role, method, pathname, body, ok) => {
    const res = await w.t.admin(method, pathname, body, as[role]!.token);
    if (ok) {
      expect([401, 403]).not.toContain(res.status);
      expect(res.status).toBeLessThan(500);
    } else {
      await expectAccessDenied(res);
    }
  });

  it('a refused call changes nothing and is not recorded as a change', async () => {
    const before = (await lastEntry(w.t.server.db, 'admin.client.created').catch(() => undefined))?.seq;
    for (const role of ['reviewer', 'auditor'] as const) {
      await expectAccessDenied(await w.t.admin('POST', '/admin/api/clients', { client_id: `by-${role}`, scope: 'expenses:read' }, as[role]!.token));
      expect((await w.t.admin('GET', `/admin/api/clients/by-${role}`)).status).toBe(404);
    }
    expect((await lastEntry(w.t.server.db, 'admin.client.created').catch(() => undefined))?.seq).toBe(before);
  });
});

describe('only an admin manages credentials', () => {
  it('reviewers and auditors cannot create, change or revoke credentials, their own included', async () => {
    for (const role of ['reviewer', 'auditor'] as const) {
      const me = as[role]!;
      await expectAccessDenied(await w.t.admin('POST', '/admin/api/admins', { name: 'escalate', role: 'admin' }, me.token));
      await expectAccessDenied(await w.t.admin('PATCH', `/admin/api/admins/${me.id}`, { role: 'admin' }, me.token));
      await expectAccessDenied(await w.t.admin('DELETE', `/admin/api/admins/${as.admin!.id}`, undefined, me.token));
    }
    const { items } = await (await w.t.admin('GET', '/admin/api/admins?limit=200')).json() as { items: Array<{ id: string; role: string; revoked_at: string | null }> };
    expect(items.find((a) => a.id === as.reviewer!.id)).toMatchObject({ role: 'reviewer', revoked_at: null });
    expect(items.find((a) => a.id === as.admin!.id)).toMatchObject({ role: 'admin', revoked_at: null });
    expect(items.some((a) => (a as { name?: string }).name === 'escalate')).toBe(false);
  });

  it('an admin changes roles; an auditor cannot decide reviews, and becomes a reviewer only if bound', async () => {
    const auditor = await create({ name: 'auditor to promote', role: 'auditor', user: { issuer: IDP, sub: 'otto' } });
    const reviewId = await pendingReviewFor('yuri', 'exp_yuri_1');
    await expectAccessDenied(await decide(reviewId, auditor.token));
    const promoted = await w.t.admin('PATCH', `/admin/api/admins/${auditor.id}`, { role: 'reviewer' });
    expect(promoted.status).toBe(200);
    expect(await promoted.json()).toMatchObject({ id: auditor.id, role: 'reviewer', user: { issuer: IDP, sub: 'otto' } });
    expect((await decide(reviewId, auditor.token)).status).toBe(200);

    const unboundAuditor = await create({ name: 'unbound auditor', role: 'auditor' });
    const refused = await w.t.admin('PATCH', `/admin/api/admins/${unboundAuditor.id}`, { role: 'reviewer' });
    expect(refused.status).toBe(400);
    // The binding is fixed at creation: a credential cannot be untied from its person.
    const rebind = await w.t.admin('PATCH', `/admin/api/admins/${auditor.id}`, { role: 'reviewer', user: { issuer: IDP, sub: 'someone' } });
    expect(rebind.status).toBe(400);
    expect(await rebind.json()).toMatchObject({ field: 'user' });
    expect((await w.t.admin('PATCH', `/admin/api/admins/${auditor.id}`, { role: 'superuser' })).status).toBe(400);
    expect((await w.t.admin('PATCH', '/admin/api/admins/adm_nope', { role: 'auditor' })).status).toBe(404);
  });

  it('a reviewer must be bound to the person they are', async () => {
    for (const body of [{ name: 'r', role: 'reviewer' }, { name: 'r', role: 'reviewer', user: { issuer: IDP } }, { name: 'r', role: 'reviewer', user: { issuer: '', sub: 'x' } }]) {
      const res = await w.t.admin('POST', '/admin/api/admins', body);
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: 'invalid_request', field: expect.stringMatching(/^user/) });
    }
    expect((await w.t.admin('POST', '/admin/api/admins', { name: 'x', role: 'root' })).status).toBe(400);
    // Credentials list their role, binding and creator.
    const made = await create({ name: 'listed', role: 'auditor' }, as.admin!.token);
    expect(made).toMatchObject({ role: 'auditor', user: null, created_by: as.admin!.id });
  });

  it('the ledger records every credential change with its role and binding', async () => {
    const db = w.t.server.db;
    const reviewer = await create({ name: 'ledgered', role: 'reviewer', user: { issuer: IDP, sub: 'lena' } }, as.admin!.token);
    expect(await lastEntry(db, 'admin.admin.created')).toMatchObject({
      actor: as.admin!.id, payload: { id: reviewer.id, name: 'ledgered', role: 'reviewer', user: { issuer: IDP, sub: 'lena' } },
    });
    expect((await w.t.admin('PATCH', `/admin/api/admins/${reviewer.id}`, { role: 'auditor' }, as.admin!.token)).status).toBe(200);
    expect(await lastEntry(db, 'admin.admin.updated')).toMatchObject({
      actor: as.admin!.id, payload: { id: reviewer.id, role: 'auditor', previous_role: 'reviewer', user: { issuer: IDP, sub: 'lena' } },
    });
    expect((await w.t.admin('DELETE', `/admin/api/admins/${reviewer.id}`, undefined, as.admin!.token)).status).toBe(204);
    expect(await lastEntry(db, 'admin.admin.revoked')).toMatchObject({ actor: as.admin!.id, payload: { id: reviewer.id, role: 'auditor' } });
  });
});
