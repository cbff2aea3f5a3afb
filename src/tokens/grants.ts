import type { Db, Statement } from '../store/db.ts';

// What the issued-token index says was granted, as history rules, running totals, baselines and counters
// read it. A grant's row commits with its ledger entry, so these are the grants the ledger holds.

type User = { issuer: string; sub: string };

// A grant's details, one row each, as far as history reads them: an action (text) on an object with a text id.
const DETAILS = `cross join lateral jsonb_array_elements(t.authorization_details) d
  where jsonb_typeof(t.authorization_details) = 'array' and jsonb_typeof(d->'action') = 'string'`;

/**
 * The actions `user` was granted at `audience` (through any agent, any task) on each of the objects with these
 * ids: distinct rows of (type, id, action), the type '' when a detail names none. Aggregated in the database,
 * so a user's many grants on one object cost one row.
 */
export function grantsOnObjects(user: User, audience: string, ids: string[]): Statement {
  return {
    sql: `select distinct case when jsonb_typeof(d->'object'->'type') = 'string' then d->'object'->>'type' else '' end as type, d->'object'->>'id' as id, d->>'action' as action
            from issued_tokens t ${DETAILS}
             and t.subject_issuer = ? and t.subject = ? and t.audience = ? and (${ids.map(() => 't.authorization_details @> ?::jsonb').join(' or ')})
             and jsonb_typeof(d->'object'->'id') = 'string' and d->'object'->>'id' in (${ids.map(() => '?').join(', ')})
           order by 1, 2, 3`,
    bindings: [user.issuer, user.sub, audience, ...ids.map((id) => JSON.stringify([{ object: { id } }])), ...ids],
  };
}

/** How often a task was granted each action at `audience` (one count per detail): rows of (action, n). */
export function taskGrants(task: string, audience: string): Statement {
  return {
    sql: `select d->>'action' as action, count(*) as n from issued_tokens t ${DETAILS} and t.task = ? and t.audience = ? group by 1 order by 1`,
    bindings: [task, audience],
  };
}

/**
 * The details and issue time of `user`'s grants at `audience` issued from `since` on whose details contain
 * one of `patterns` (jsonb containment: e.g. `[{ action, object: { type } }]`).
 */
export function grantsSince(user: User, audience: string, since: Date, patterns: unknown[]): Statement {
  return {
    sql: `select authorization_details, issued_at from issued_tokens
           where subject_issuer = ? and subject = ? and audience = ? and issued_at >= ?::timestamptz and (${patterns.map(() => 'authorization_details @> ?::jsonb').join(' or ')})`,
    bindings: [user.issuer, user.sub, audience, since.toISOString(), ...patterns.map((p) => JSON.stringify(p))],
  };
}

/** One agent's grants in [since, until) whose details name `purpose`, counted by audience and granted scope string. */
export async function grantsForPurpose(db: Db, clientId: string, purpose: string, since: Date, until: Date): Promise<Array<{ audience: string; scope: string; n: number }>> {
  const rows: Array<{ audience: string; scope: string; n: number | string }> = await db('issued_tokens')
    .where({ client_id: clientId })
    .where('issued_at', '>=', since)
    .where('issued_at', '<', until)
    .whereRaw('authorization_details @> ?::jsonb', [JSON.stringify([{ purpose }])])
    .groupBy('audience', 'scope')
    .select('audience', 'scope')
    .count({ n: '*' });
  return rows.map((r) => ({ audience: r.audience, scope: r.scope, n: Number(r.n) }));
}

/** How many tokens an agent was issued for one user since `since` (every task, every audience). */
export async function countAgentGrants(db: Db, clientId: string, user: User, since: Date): Promise<number> {
  const row = await db('issued_tokens').where({ client_id: clientId, subject_issuer: user.issuer, subject: user.sub }).where('issued_at', '>=', since).count({ n: '*' }).first();
  return Number(row?.n ?? 0);
}
