import type { Db } from '../store/db.ts';

interface Detail { action?: unknown; object?: { type?: unknown; amount?: unknown } }
export interface AmountQuery { within: number; action: string; type: string }

/**
 * The running totals behind `history.amount_total`: per window, action and object type, the sum of
 * `object.amount` over the details of this user's grants at this resource within the window before
 * `now`. Read from the issued-token index, which commits with each grant's ledger entry; under the
 * user's decision lock, so concurrent requests are added up one at a time and cannot overshoot together.
 * Keyed `<within>|<action>|<type>`.
 */
export async function amountTotals(db: Db, user: { issuer: string; sub: string }, resource: string, queries: AmountQuery[], now: Date): Promise<Record<string, number>> {
  const totals: Record<string, number> = {};
  if (queries.length === 0) return totals;
  for (const q of queries) totals[`${q.within}|${q.action}|${q.type}`] = 0;
  const pairs = [...new Map(queries.map((q) => [`${q.action}|${q.type}`, q])).values()];
  const since = new Date(now.getTime() - Math.max(...queries.map((q) => q.within)) * 1000);
  const rows: Array<{ authorization_details: Detail[]; issued_at: Date | string }> = await db('issued_tokens')
    .where({ subject_issuer: user.issuer, subject: user.sub, audience: resource })
    .where('issued_at', '>=', since)
    .where((w) => {
      for (const p of pairs) w.orWhereRaw('authorization_details @> ?::jsonb', [JSON.stringify([{ action: p.action, object: { type: p.type } }])]);
    })
    .select('authorization_details', 'issued_at');
  for (const r of rows) {
    const age = now.getTime() - new Date(r.issued_at).getTime();
    for (const d of r.authorization_details) {
      const amount = d.object?.amount;
      if (typeof amount !== 'number' || !Number.isFinite(amount)) continue;
      for (const q of queries) {
        if (d.action === q.action && d.object?.type === q.type && age <= q.within * 1000) totals[`${q.within}|${q.action}|${q.type}`]! += amount;
      }
    }
  }
  return totals;
}
