import { decodeRows } from '../ledger/query.ts';
import type { Db } from '../store/db.ts';
import type { LockedRead } from './user_lock.ts';

/** The part of an authorization detail that history is about. */
interface Detail { action?: unknown; object?: { type?: unknown; id?: unknown } }

export interface HistoryFacts { userObjectActions: Record<string, string[]>; taskActionCounts: Record<string, number> }

const objectKey = (o: { type?: unknown; id?: unknown } | undefined) => (typeof o?.id === 'string' ? `${typeof o.type === 'string' ? o.type : ''}:${o.id}` : undefined);

const objectIds = (details: Detail[]) => {
  const objects = new Map<string, unknown>();
  for (const d of details) {
    const key = objectKey(d.object);
    if (key && !objects.has(key)) objects.set(key, d.object!.id);
  }
  return objects;
};

/**
 * The statements that read the history of a request, run by the caller (the user lock runs them in the
 * round trip that takes the lock, src/tasks/user_lock.ts), then given to historyFromRows: the grants on the
 * named objects and this resource's reported events in one, and on a task hop the task's grants at this
 * resource in another. Bindings are all text.
 */
export function historyReads(user: { issuer: string; sub: string }, resource: string, task: string | undefined, details: Detail[]): LockedRead[] {
  const ids = [...objectIds(details).values()];
  return [
    ...(ids.length
      ? [{
        sql: `select authorization_details, null::bigint as seq, null::bytea as payload, null::bytea as leaf_hash, null::bytea as chain_hash
           from issued_tokens
          where subject_issuer = ? and subject = ? and audience = ? and (${ids.map(() => 'authorization_details @> ?::jsonb').join(' or ')})
         union all
         select null, seq, payload, leaf_hash, chain_hash from ledger_entries where kind = 'resource.event' and subject = ? and actor = ?`,
        bindings: [user.issuer, user.sub, resource, ...ids.map((id) => JSON.stringify([{ object: { id } }])), user.sub, resource],
      }]
      : []),
    ...(task ? [{ sql: 'select authorization_details from issued_tokens where task = ? and audience = ? and authorization_details is not null', bindings: [task, resource] }] : []),
  ];
}

type FactRow = { authorization_details: Detail[] | null; seq: number | null; payload: Buffer; leaf_hash: Buffer; chain_hash: Buffer };

/**
 * What the ledger says about this request **at this resource** (the token's one audience): for each object
 * it names, the actions the same user (issuer + sub, through any agent and any task) was granted on it
 * there, or that this resource's server reported as done on it; and how often this task was granted each
 * action there. Facts recorded at another resource (or in a delegation token, whose audience is an agent)
 * never count: one resource's server or permissive policy cannot decide a request at another.
 * Grants are read from the issued-token index, which commits with the ledger entry of each grant.
 */
export async function historyFromRows(
  db: Db, user: { issuer: string; sub: string }, resource: string, task: string | undefined, details: Detail[], rows: unknown[][],
): Promise<HistoryFacts> {
  // The rows of historyReads' statements, in their order.
  const objects = objectIds(details);
  const facts = (objects.size ? rows[0]! : []) as FactRow[];
  const taskRows = (task ? rows[objects.size ? 1 : 0]! : []) as Array<{ authorization_details: Detail[] }>;
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

/** The history facts read directly, for `policies/simulate` and replay (no lock round trip to share). */
export async function historyFacts(db: Db, user: { issuer: string; sub: string }, resource: string, task: string | undefined, details: Detail[]): Promise<HistoryFacts> {
  const rows: unknown[][] = [];
  for (const r of historyReads(user, resource, task, details)) rows.push(((await db.raw(r.sql, r.bindings)) as { rows: unknown[] }).rows);
  return historyFromRows(db, user, resource, task, details, rows);
}
