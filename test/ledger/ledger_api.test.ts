import { compactVerify, decodeJwt, importJWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { verifyInclusion, verifyConsistency } from '../../src/ledger/merkle.ts';
import { publicKeyFrom, verifyLedger } from '../../src/ledger/verify.ts';
import { details, EXPENSES, exchangeParams, HR, reportEvent, startWorld, type World } from '../helpers/world.ts';

let w: World;
beforeAll(async () => { w = await startWorld({ ledger: { checkpoint_every: 1_000_000, checkpoint_interval: 86_400 } }); });
afterAll(async () => { await w?.t.stop(); });

function basic(clientId: string): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(w.creds[clientId]!.join(':')).toString('base64')}` };
}

async function exchanged(extra: Record<string, string> = {}): Promise<{ token: string; jti: string }> {
  const res = await w.exchange('agent', exchangeParams(await w.userToken(), extra));
  expect(res.status).toBe(200);
  const { access_token } = await res.json() as { access_token: string };
  return { token: access_token, jti: decodeJwt(access_token).jti! };
}

function postEvent(body: unknown, client = 'expenses-rs'): Promise<Response> {
  return reportEvent(w, client, body);
}

describe('resource-server events', () => {
  it('records what a call did, linked to the exchange that issued the token', async () => {
    const { jti } = await exchanged({ scope: 'expenses:submit', authorization_details: details('submit', { type: 'Expense', amount: 12 }) });
    const res = await postEvent({ jti, outcome: 'success', action: 'submit', object: { type: 'Expense', id: 'exp_1', created: true }, summary: { rows: 1, sha256: 'ab'.repeat(32) } });
    expect(res.status).toBe(201);
    const { seq } = await res.json() as { seq: number };
    const entries = await (await w.t.admin('GET', `/admin/api/ledger?kind=resource.event&jti=${jti}`)).json() as { items: Array<{ seq: number; actor: string; payload: Record<string, unknown> }> };
    expect(entries.items).toHaveLength(1);
    const granted = await (await w.t.admin('GET', `/admin/api/ledger?kind=exchange.granted&jti=${jti}`)).json() as { items: Array<{ seq: number }> };
    expect(entries.items[0]).toMatchObject({ seq, actor: EXPENSES, payload: { outcome: 'success', action: 'submit', client_id: 'agent', exchange_seq: granted.items[0]!.seq, summary: { rows: 1 } } });
  });

  it('refuses events for another resource server\'s token (403), unknown tokens (404), bad input (400), no auth (401)', async () => {
    const { jti } = await exchanged();
    const other = await postEvent({ jti, outcome: 'success', action: 'read' }, 'hr-rs');
    expect(other.status).toBe(403);
    expect(await other.json()).toMatchObject({ error: 'access_denied' });
    expect((await postEvent({ jti: 'nope', outcome: 'success', action: 'read' })).status).toBe(404);
    const bad = await postEvent({ jti, outcome: 'maybe', action: 'read' });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ field: 'outcome' });
    expect((await postEvent({ jti, outcome: 'success', action: 'read', raw_rows: [1] })).status).toBe(400);
    const notRs = await postEvent({ jti, outcome: 'success', action: 'read' }, 'agent');
    expect(notRs.status).toBe(403);
    const anon = await fetch(`${w.t.url}/ledger/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(anon.status).toBe(401);
    const wrong = await fetch(`${w.t.url}/ledger/events`, { method: 'POST', headers: { authorization: `Basic ${Buffer.from('expenses-rs:wrong').toString('base64')}`, 'content-type': 'application/json' }, body: '{}' });
    expect(wrong.status).toBe(401);
  });
});

describe('checkpoints and proofs', () => {
  it('serves a signed checkpoint and a verifiable inclusion proof per entry', async () => {
    expect((await fetch(`${w.t.url}/.well-known/ledger-checkpoint`)).status).toBe(404);
    const { jti } = await exchanged();
    const first = await w.t.admin('POST', '/admin/api/ledger/checkpoint');
    expect(first.status).toBe(201);
    const firstSize = (await first.json() as { tree_size: number }).tree_size;
    await exchanged();
    expect((await w.t.admin('POST', '/admin/api/ledger/checkpoint')).status).toBe(201);
    expect((await w.t.admin('POST', '/admin/api/ledger/checkpoint')).status).toBe(409);

    const res = await fetch(`${w.t.url}/.well-known/ledger-checkpoint?from=${firstSize}`);
    expect(res.status).toBe(200);
    const cp = await res.json() as { tree_size: number; root_hash: string; timestamp: string; jws: string; public_key: Record<string, unknown>; consistency_proof: string[] };
    const { payload } = await compactVerify(cp.jws, await importJWK(cp.public_key, 'EdDSA'));
    expect(JSON.parse(Buffer.from(payload).toString())).toEqual({ root_hash: cp.root_hash, timestamp: cp.timestamp, tree_size: cp.tree_size });
    const firstRow = await w.t.server.db('ledger_checkpoints').where({ tree_size: firstSize }).first();
    expect(verifyConsistency(firstSize, cp.tree_size, Buffer.from(firstRow.root_hash), Buffer.from(cp.root_hash, 'hex'), cp.consistency_proof.map((h) => Buffer.from(h, 'hex')))).toBe(true);

    const granted = await (await w.t.admin('GET', `/admin/api/ledger?kind=exchange.granted&jti=${jti}`)).json() as { items: Array<{ seq: number }> };
    const seq = granted.items[0]!.seq;
    // The resource server the token was for may fetch the proof; another may not; an admin may.
    const proofRes = await fetch(`${w.t.url}/ledger/entries/${seq}/proof`, { headers: basic('expenses-rs') });
    expect(proofRes.status).toBe(200);
    const proof = await proofRes.json() as { covered: boolean; leaf_index: number; inclusion_proof: string[]; entry: { leaf_hash: string; payload: Record<string, unknown> }; checkpoint: { tree_size: number; root_hash: string } };
    expect(proof.covered).toBe(true);
    expect(proof.entry.payload.jti).toBe(jti);
    expect(verifyInclusion(Buffer.from(proof.entry.leaf_hash, 'hex'), proof.leaf_index, proof.checkpoint.tree_size, proof.inclusion_proof.map((h) => Buffer.from(h, 'hex')), Buffer.from(proof.checkpoint.root_hash, 'hex'))).toBe(true);
    expect((await fetch(`${w.t.url}/ledger/entries/${seq}/proof`, { headers: basic('hr-rs') })).status).toBe(404);
    expect((await fetch(`${w.t.url}/ledger/entries/${seq}/proof`, { headers: { authorization: `Bearer ${w.t.adminToken}` } })).status).toBe(200);
    expect((await fetch(`${w.t.url}/ledger/entries/${seq}/proof`)).status).toBe(401);
    expect((await fetch(`${w.t.url}/ledger/entries/0/proof`, { headers: { authorization: `Bearer ${w.t.adminToken}` } })).status).toBe(400);

    await exchanged();
    const head = await w.t.server.db('ledger_head').first('seq');
    const uncovered = await (await fetch(`${w.t.url}/ledger/entries/${head.seq}/proof`, { headers: { authorization: `Bearer ${w.t.adminToken}` } })).json();
    expect(uncovered).toMatchObject({ covered: false, message: expect.stringContaining('no signed checkpoint covers') });

    // Each checkpoint is also a file outside the database.
    const anchorDir = w.t.config.ledger.anchorDir;
    const files = (await import('node:fs')).readdirSync(anchorDir);
    expect(files).toHaveLength(2);
    const anchored = JSON.parse(readFileSync(path.join(anchorDir, files.sort()[1]!), 'utf8'));
    expect(anchored).toMatchObject({ tree_size: cp.tree_size, root_hash: cp.root_hash, previous_tree_size: firstSize });
    expect(anchored.leaf_hashes).toHaveLength(cp.tree_size - firstSize);
  });
});

describe('queries, erasure and replay', () => {
  it('filters and pages the ledger for admins, and refuses malformed filters', async () => {
    await exchanged();
    const all = await (await w.t.admin('GET', '/admin/api/ledger?client_id=agent&decision=granted&limit=2')).json() as { items: Array<{ seq: number; payload: Record<string, unknown> }>; next_cursor: string };
    expect(all.items).toHaveLength(2);
    expect(all.items[0]!.seq).toBeGreaterThan(all.items[1]!.seq);
    expect(all.items.every((e) => e.payload.client_id === 'agent' && e.payload.decision === 'granted')).toBe(true);
    const next = await (await w.t.admin('GET', `/admin/api/ledger?client_id=agent&decision=granted&limit=2&cursor=${all.next_cursor}`)).json() as { items: Array<{ seq: number }> };
    expect(next.items[0]!.seq).toBeLessThan(all.items[1]!.seq);
    const bySubject = await (await w.t.admin('GET', '/admin/api/ledger?subject=alice&since=2000-01-01T00:00:00Z')).json() as { items: unknown[] };
    expect(bySubject.items.length).toBeGreaterThan(0);
    expect((await w.t.admin('GET', '/admin/api/ledger?since=yesterday')).status).toBe(400);
    expect((await w.t.admin('GET', '/admin/api/ledger?limit=100000')).status).toBe(400);
    expect((await w.t.admin('GET', `/admin/api/ledger?subject=${encodeURIComponent("' OR 1=1 --")}`)).status).toBe(200);
  });

  it('erases personal text without breaking the chain', async () => {
    const intent = `Erase me ${Date.now()}`;
    await w.exchange('agent', exchangeParams(await w.userToken(), { intent }));
    const { items } = await (await w.t.admin('GET', '/admin/api/ledger?kind=exchange.granted&limit=1')).json() as { items: Array<{ payload: Record<string, unknown> }> };
    expect(items[0]!.payload.intent).toBe(intent);
    const hash = items[0]!.payload.intent_sha256 as string;
    await w.t.server.db('ledger_personal').where({ hash }).delete();
    const after = await (await w.t.admin('GET', '/admin/api/ledger?kind=exchange.granted&limit=1')).json() as { items: Array<{ payload: Record<string, unknown> }> };
    expect(after.items[0]!.payload).not.toHaveProperty('intent');
    expect(after.items[0]!.payload.intent_sha256).toBe(hash);
    const jwk = readFileSync(path.join(w.t.env.DATA_DIR!, 'ledger-key.jwk'), 'utf8');
    expect((await verifyLedger(w.t.server.db, await publicKeyFrom(jwk), w.t.config.ledger.anchorDir)).ok).toBe(true);
  });

  it('replays recorded exchanges under a draft policy and lists what would change', async () => {
    await w.exchange('agent', exchangeParams(await w.userToken(), { resource: HR, scope: 'hr:read' }));
    const base = readFileSync('test/fixtures/policy/exchange.yaml', 'utf8');
    const draft = base.replace('  - id: hr-read\n    effect: allow', '  - id: hr-read\n    effect: deny\n    reason: hr_frozen');
    const res = await w.t.admin('POST', '/admin/api/policies/replay', { document: draft });
    expect(res.status).toBe(200);
    const report = await res.json() as { examined: number; unchanged: number; changed: Array<{ original: { decision: string }; replayed: { decision: string; reasons: string[] } }> };
    expect(report.changed.length).toBeGreaterThanOrEqual(1);
    expect(report.changed.every((c) => c.original.decision === 'granted' && c.replayed.decision === 'denied' && c.replayed.reasons.includes('hr_frozen'))).toBe(true);
    expect(report.unchanged).toBeGreaterThan(0);
    const same = await (await w.t.admin('POST', '/admin/api/policies/replay', { document: base, since: '1d' })).json() as { changed: unknown[] };
    expect(same.changed).toEqual([]);
    expect((await w.t.admin('POST', '/admin/api/policies/replay', { document: 'rules: [' })).status).toBe(400);
  });
});
