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
  // The reads are independent: issued together, so a decision waits for one round trip, not three.
  const objects = new Map<string, unknown>();
  for (const d of details) {
    const key = objectKey(d.object);
    if (key && !objects.has(key)) objects.set(key, d.object!.id);
  }
  const [grants, events, taskRows] = await Promise.all([
    Promise.all([...objects].map(([key, id]) => db('issued_tokens')
      .where({ subject_issuer: user.issuer, subject: user.sub, audience: resource })
      .whereRaw('authorization_details @> ?::jsonb', [JSON.stringify([{ object: { id } }])])
      .select('authorization_details')
      .then((rows) => [key, rows] as const))),
    // What this resource's server reported as done for this user, e.g. the object a call created. Only
    // `success` events are facts; the actor is read from the sealed payload, not only the index column.
    objects.size
      ? db('ledger_entries').where({ kind: 'resource.event', subject: user.sub, actor: resource }).select('seq', 'payload', 'leaf_hash', 'chain_hash').then((rows) => decodeRows(db, rows))
      : Promise.resolve([]),
    task
      ? db('issued_tokens').where({ task, audience: resource }).whereNotNull('authorization_details').select('authorization_details')
      : Promise.resolve([]),
  ]);

  const userObjectActions: Record<string, string[]> = {};
  for (const [key, rows] of grants) {
    const actions = new Set<string>();
    for (const r of rows) {
      for (const granted of r.authorization_details as Detail[]) {
        if (objectKey(granted.object) === key && typeof granted.action === 'string') actions.add(granted.action);
      }
    }
    userObjectActions[key] = [...actions];
  }
  for (const e of events) {
    const p = e.payload as { user?: { issuer?: string }; outcome?: string; action?: unknown; object?: { type?: unknown; id?: unknown } };
    const key = objectKey(p.object);
    if (e.actor !== resource || p.user?.issuer !== user.issuer || p.outcome !== 'success' || !key || !objects.has(key) || typeof p.action !== 'string') continue;
    if (!userObjectActions[key]!.includes(p.action)) userObjectActions[key]!.push(p.action);
  }
  const taskActionCounts: Record<string, number> = {};
  for (const r of taskRows) {
    for (const granted of r.authorization_details as Detail[]) {
      if (typeof granted.action === 'string') taskActionCounts[granted.action] = (taskActionCounts[granted.action] ?? 0) + 1;
    }
  }
  return { userObjectActions, taskActionCounts };
}
