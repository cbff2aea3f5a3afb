import type { Statement } from '../store/db.ts';
import { grantsSince } from '../tokens/grants.ts';

interface Detail { action?: unknown; object?: { type?: unknown; amount?: unknown } }

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/**
 * The running totals behind `history.amount_total`: per window, action and object type, the sum of
 * `object.amount` over the details of this user's grants at this resource within the window before
 * `now`. Read from the issued-token index, which commits with each grant's ledger entry; under the
 * user's decision lock, so concurrent requests are added up one at a time and cannot overshoot together.
 * Keyed `<within>|<action>|<type>`: one key per window and (action, type) the request's details name.
 */
export function amountRead(windows: readonly number[], q: { user: { issuer: string; sub: string }; target: string; details: Detail[]; now: Date }) {
  const queries: Array<{ within: number; action: string; type: string }> = [];
  for (const d of q.details) {
    const action = str(d.action);
    const type = str(d.object?.type);
    if (action && type) for (const within of windows) queries.push({ within, action, type });
  }
  const pairs = [...new Map(queries.map((x) => [`${x.action}|${x.type}`, x])).values()];
  const now = q.now.getTime();
  const since = new Date(now - Math.max(0, ...queries.map((x) => x.within)) * 1000);
  const statements: Statement[] = pairs.length ? [grantsSince(q.user, q.target, since, pairs.map((p) => [{ action: p.action, object: { type: p.type } }]))] : [];
  return {
    statements,
    /** The totals from the rows of `statements`. */
    totals(rows: unknown[][]): Record<string, number> {
      const totals: Record<string, number> = {};
      for (const x of queries) totals[`${x.within}|${x.action}|${x.type}`] = 0;
      for (const r of (statements.length ? rows[0]! : []) as Array<{ authorization_details: Detail[]; issued_at: Date | string }>) {
        const age = now - new Date(r.issued_at).getTime();
        for (const d of r.authorization_details) {
          const amount = d.object?.amount;
          if (typeof amount !== 'number' || !Number.isFinite(amount)) continue;
          for (const x of queries) {
            if (d.action === x.action && d.object?.type === x.type && age <= x.within * 1000) totals[`${x.within}|${x.action}|${x.type}`]! += amount;
          }
        }
      }
      return totals;
    },
  };
}
