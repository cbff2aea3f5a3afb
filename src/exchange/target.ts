import { getClient, GRANT_TOKEN_EXCHANGE_TYPE, type Client } from '../registry/clients.ts';
import { ID_PATTERN, splitScope } from '../registry/common.ts';
import { getResource, type Resource, type ResourceScope } from '../registry/resources.ts';
import type { Db } from '../store/db.ts';
import { invalidTarget } from './errors.ts';
import { strictestLabels } from '../policy/labels.ts';

export type Target =
  | { kind: 'resource'; identifier: string; resource: Resource; scopes: ResourceScope[] }
  | { kind: 'agent'; identifier: string; agent: Client; scopes: ResourceScope[] };

const idPattern = new RegExp(ID_PATTERN);

/** A delegation's scopes, labelled the strictest way any registered resource labels them. */
async function labelScopes(db: Db, names: string[]): Promise<ResourceScope[]> {
  const rows = await db('resources').select('scopes');
  return strictestLabels(rows.map((r: { scopes: ResourceScope[] }) => r.scopes), names) as ResourceScope[];
}

/** The token's one audience: a registered resource, or another agent (a delegation). */
export async function resolveTarget(db: Db, target: string): Promise<Target> {
  const resource = await getResource(db, target);
  if (resource) return { kind: 'resource', identifier: target, resource, scopes: resource.scopes };
  if (idPattern.test(target)) {
    const agent = await getClient(db, target);
    if (agent?.grant_types.includes(GRANT_TOKEN_EXCHANGE_TYPE)) {
      return { kind: 'agent', identifier: target, agent, scopes: await labelScopes(db, splitScope(agent.scope)) };
    }
  }
  throw invalidTarget('the resource or audience is not a registered resource or agent');
}
