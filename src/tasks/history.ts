import { decodeRows, resourceEvents } from '../ledger/query.ts';
import type { CompiledPolicy } from '../policy/compile.ts';
import type { HistoryInput } from '../policy/decide.ts';
import type { Db, Statement } from '../store/db.ts';
import { grantsOnObjects, taskGrants } from '../tokens/grants.ts';
import { amountRead } from './amounts.ts';

/** The part of an authorization detail that history is about. */
interface Detail { action?: unknown; object?: { type?: unknown; id?: unknown; amount?: unknown } }

/** What history a request is decided on: about whom, at which resource, in which task, on which objects, when. */
export interface HistoryQuestion { user: { issuer: string; sub: string }; target: string; task?: string | undefined; details: Detail[]; now: Date }

/**
 * The reads a decision's history takes and how its facts come from their rows. The statements are run by the
 * caller: the user lock runs them in the round trip that takes the lock (src/tasks/user_lock.ts), simulate
 * and replay on the pool (runStatements).
 */
export interface HistoryRead {
  statements: Statement[];
  facts(db: Db, rows: unknown[][]): Promise<HistoryInput>;
}

const objectKey = (o: { type?: unknown; id?: unknown } | undefined) => (typeof o?.id === 'string' ? `${typeof o.type === 'string' ? o.type : ''}:${o.id}` : undefined);

const objectIds = (details: Detail[]) => {
  const objects = new Map<string, string>();
  for (const d of details) {
    const key = objectKey(d.object);
    if (key && !objects.has(key)) objects.set(key, d.object!.id as string);
  }
  return objects;
};

/**
 * What the ledger says about this request **at this resource** (the token's one audience), as far as the
 * policy's rules read it (policy.historyNeeds, policy.amountWindows): for each object it names, the actions the
 * same user (issuer + sub, through any agent and any task) was granted on it there, or that this resource's
 * server reported as done on it; how often this task was granted each action there; and the running totals.
 * Facts recorded at another resource (or in a delegation token, whose audience is an agent) never count: one
 * resource's server or permissive policy cannot decide a request at another. Grants are read from the
 * issued-token index, which commits with the ledger entry of each grant.
 */
export function historyRead(policy: Pick<CompiledPolicy, 'historyNeeds' | 'amountWindows'>, q: HistoryQuestion): HistoryRead {
  const objects = policy.historyNeeds.objectActions ? objectIds(q.details) : new Map<string, string>();
  const ids = [...new Set(objects.values())];
  const task = policy.historyNeeds.taskCounts ? q.task : undefined;
  const amounts = amountRead(policy.amountWindows, q);
  const statements = [
    ...(ids.length ? [grantsOnObjects(q.user, q.target, ids), resourceEvents(q.user.sub, q.target)] : []),
    ...(task ? [taskGrants(task, q.target)] : []),
    ...amounts.statements,
  ];
  return {
    statements,
    async facts(db, rows) {
      let at = 0;
      const granted = (ids.length ? rows[at++]! : []) as Array<{ type: string; id: string; action: string }>;
      const events = ids.length ? await decodeRows(db, rows[at++] as Parameters<typeof decodeRows>[1]) : [];
      const counted = (task ? rows[at++]! : []) as Array<{ action: string; n: number | string }>;

      const userObjectActions: Record<string, string[]> = Object.fromEntries([...objects.keys()].map((key) => [key, []]));
      for (const g of granted) {
        const list = userObjectActions[`${g.type}:${g.id}`];
        if (list && !list.includes(g.action)) list.push(g.action);
      }
      for (const e of events) {
        const p = e.payload as { user?: { issuer?: string }; outcome?: string; action?: unknown; object?: { type?: unknown; id?: unknown } };
        const key = objectKey(p.object);
        if (e.actor !== q.target || p.user?.issuer !== q.user.issuer || p.outcome !== 'success' || !key || !objects.has(key) || typeof p.action !== 'string') continue;
        if (!userObjectActions[key]!.includes(p.action)) userObjectActions[key]!.push(p.action);
      }
      const taskActionCounts: Record<string, number> = Object.fromEntries(counted.map((c) => [c.action, Number(c.n)]));
      return { userObjectActions, taskActionCounts, ...(policy.amountWindows.length ? { amountTotals: amounts.totals(rows.slice(at)) } : {}) };
    },
  };
}
