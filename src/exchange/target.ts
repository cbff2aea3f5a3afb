import type { RegistryCache } from '../registry/cache.ts';
import { GRANT_TOKEN_EXCHANGE_TYPE, type Client } from '../registry/clients.ts';
import { ID_PATTERN, splitScope } from '../validate/common.ts';
import type { Resource, ResourceScope } from '../registry/resources.ts';
import { invalidTarget } from './errors.ts';
import { strictestLabels } from '../policy/labels.ts';

export type Target =
  | { kind: 'resource'; identifier: string; resource: Resource; scopes: ResourceScope[] }
  | { kind: 'agent'; identifier: string; agent: Client; scopes: ResourceScope[] };

const idPattern = new RegExp(ID_PATTERN);

/**
 * Scopes of a delegation token cross resources, so each takes the strictest label any resource gives
 * it: a policy never sees a delegated scope as less sensitive than it is somewhere.
 */
function labelScopes(registry: RegistryCache, names: string[]): ResourceScope[] {
  return strictestLabels([...registry.resources()].map((r) => r.scopes), names) as ResourceScope[];
}

/** The token's one audience: a registered resource, or another agent (a delegation). */
export function resolveTarget(registry: RegistryCache, target: string): Target {
  const resource = registry.resource(target);
  if (resource) return { kind: 'resource', identifier: target, resource, scopes: resource.scopes };
  if (idPattern.test(target)) {
    const agent = registry.client(target);
    if (agent?.grant_types.includes(GRANT_TOKEN_EXCHANGE_TYPE)) {
      return { kind: 'agent', identifier: target, agent, scopes: labelScopes(registry, splitScope(agent.scope)) };
    }
  }
  throw invalidTarget(`${target} is not a registered resource or agent`);
}

/**
 * Why each scope is beyond the ceiling (subject ∩ client ∩ target), naming every limit it hit, so the
 * caller learns which of the three to change.
 */
export function scopeLimits(beyond: string[], subjectScopes: readonly string[], clientScopes: ReadonlySet<string>, targetScopes: ReadonlySet<string>, clientId: string, target: string): string {
  const why = beyond.map((s) => {
    const limits = [
      ...(subjectScopes.includes(s) ? [] : ['the subject token does not carry it']),
      ...(clientScopes.has(s) ? [] : [`client ${clientId} may not be granted it`]),
      ...(targetScopes.has(s) ? [] : [`${target} has no such scope`]),
    ];
    return `${s}: ${limits.join(', ')}`;
  });
  return `scope beyond what may be granted (${why.join('; ')})`;
}
