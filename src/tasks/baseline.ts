import type { Db } from '../store/db.ts';
import { grantsForPurpose } from '../tokens/grants.ts';

/** One agent's grants for one purpose over a window, by audience and granted scope string, with how many. */
export type BaselineGrants = Array<{ audience: string; scopes: string[]; grants: number }>;

/**
 * What an agent (any user, any task) was granted for a purpose within `within` seconds before `now`:
 * the raw material of its baseline. The caller labels the scopes with the resources' sensitivities.
 * Tokens whose details name the purpose count; a delegation's tokens (an agent as audience) are not
 * about a resource and the caller drops them.
 */
export async function baselineGrants(db: Db, clientId: string, purpose: string, within: number, now: Date): Promise<BaselineGrants> {
  const rows = await grantsForPurpose(db, clientId, purpose, new Date(now.getTime() - within * 1000), now);
  return rows.map((r) => ({ audience: r.audience, scopes: r.scope.split(' ').filter(Boolean), grants: r.n }));
}
