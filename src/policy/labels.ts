import type { DecisionScope } from './decide.ts';

const ORDER = ['public', 'internal', 'confidential', 'restricted'] as const;

/**
 * Scopes of a delegation token cross resources, so each takes the strictest label any resource gives
 * it (and `write` if any resource says so): a policy never sees a delegated scope as less sensitive
 * than it is somewhere. `names` limits the result to the delegate's scopes.
 */
export function strictestLabels(resources: Iterable<readonly DecisionScope[]>, names?: readonly string[]): DecisionScope[] {
  const best = new Map<string, DecisionScope>();
  for (const scopes of resources) {
    for (const s of scopes) {
      if (names && !names.includes(s.name)) continue;
      const prev = best.get(s.name);
      best.set(s.name, {
        name: s.name,
        sensitivity: prev && ORDER.indexOf(prev.sensitivity) > ORDER.indexOf(s.sensitivity) ? prev.sensitivity : s.sensitivity,
        operation: prev?.operation === 'write' ? 'write' : s.operation,
      });
    }
  }
  return [...best.values()];
}
