import { decodeRows } from '../ledger/query.ts';
import type { Db } from '../store/db.ts';

/** The part of an authorization detail that history is about. */
interface Detail { action?: unknown; object?: { type?: unknown; id?: unknown } }

export interface HistoryFacts { userObjectActions: Record<string, string[]>; taskActionCounts: Record<string, number> }

const objectKey = (o: { type?: unknown; id?: unknown } | undefined) => (typeof o?.id === 'string' ? `${typeof o.type === 'string' ? o.type : ''}:${o.id}` : undefined);

/**
 * What the ledger says about this request **at this resource** (the token's one audience): for each object
 * it names, the actions the same user (issuer + sub, through any agent and any task) was granted on it
 * there, or that this resource's server reported as done on it; and how often this task was granted each
 * action there. Facts recorded at another resource (or in a delegation token, whose audience is an agent)
 * never count: one resource's server or permissive policy cannot decide a request at another.
 * Grants are read from the issued-token index, which commits with the ledger entry of each grant.
 */
export async function historyFacts(db: Db, user: { issuer: string; sub: string }, resource: string, task: string | undefined, details: Detail[]): Promise<HistoryFacts> {
  const objects = new Map<string, unknown>();
  for (const d of details) {
    const key = objectKey(d.object);
    if (key && !objects.has(key)) objects.set(key, d.object!.id);
  }
  // Grants on the named objects and this resource's reported events, in one statement: a decision that
  // reads history pays one round trip for it (the task's counts, on a task hop, go alongside).
  const ids = [...objects.values()];
  const [facts, taskRows] = await Promise.all([
    ids.length
      ? db.raw(
        `select authorization_details, null::bigint as seq, null::bytea as payload, null::bytea as leaf_hash, null::bytea as chain_hash
           from issued_tokens
          where subject_issuer = ? and subject = ? and audience = ? and (${ids.map(() => 'authorization_details @> ?::jsonb').join(' or ')})
         union all
         select null, seq, payload, leaf_hash, chain_hash from ledger_entries where kind = 'resource.event' and subject = ? and actor = ?`,
        [user.issuer, user.sub, resource, ...ids.map((id) => JSON.stringify([{ object: { id } }])), user.sub, resource],
      ).then((r: { rows: Array<{ authorization_details: Detail[] | null; seq: number | null; payload: Buffer; leaf_hash: Buffer; chain_hash: Buffer }> }) => r.rows)
      : Promise.resolve([]),
    task
      ? db('issued_tokens').where({ task, audience: resource }).whereNotNull('authorization_details').select('authorization_details')
      : Promise.resolve([]),
  ]);
  const events = await decodeRows(db, facts.filter((r) => r.seq !== null) as Array<{ seq: number; payload: Buffer; leaf_hash: Buffer; chain_hash: Buffer }>);

  // The actions granted on each named object, in the order the grants were read.
  const granted = new Map([...objects.keys()].map((key) => [key, new Set<string>()]));
  for (const r of facts) {
    for (const d of r.seq === null ? r.authorization_details as Detail[] : []) {
      const key = objectKey(d.object);
      if (key !== undefined && typeof d.action === 'string') granted.get(key)?.add(d.action);
    }
  }
  const userObjectActions: Record<string, string[]> = Object.fromEntries([...granted].map(([key, actions]) => [key, [...actions]]));
  for (const e of events) {
    const p = e.payload as { user?: { issuer?: string }; outcome?: string; action?: unknown; object?: { type?: unknown; id?: unknown } };
    const key = objectKey(p.object);
    if (e.actor !== resource || p.user?.issuer !== user.issuer || p.outcome !== 'success' || !key || !objects.has(key) || typeof p.action !== 'string') continue;
    if (!userObjectActions[key]!.includes(p.action)) userObjectActions[key]!.push(p.action);
  }
  const taskActionCounts: Record<string, number> = {};
  for (const r of taskRows) {
    for (const d of r.authorization_details as Detail[]) {
      if (typeof d.action === 'string') taskActionCounts[d.action] = (taskActionCounts[d.action] ?? 0) + 1;
    }
  }
  return { userObjectActions, taskActionCounts };
}
