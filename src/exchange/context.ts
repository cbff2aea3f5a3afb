import type { CompiledPolicy } from '../policy/compile.ts';
import type { BaselineFacts, DecisionInput, HistoryInput } from '../policy/decide.ts';
import type { BuiltContext, DecisionRequest } from '../policy/request.ts';
import { splitScope } from '../validate/common.ts';
import type { RegistryCache } from '../registry/cache.ts';
import { runStatements, type Db, type Statement } from '../store/db.ts';
import { baselineGrants } from '../tasks/baseline.ts';
import { taskStatus } from '../tasks/behaviour.ts';
import { historyRead } from '../tasks/history.ts';
import { agentStanding, standingFrom, standingRead } from '../tasks/holds.ts';
import { ExchangeError } from './errors.ts';
import { resolveTarget, scopeLimits, type Target } from './target.ts';

export type ExchangeContext = Extract<BuiltContext, { ok: true }> & { target: Target; ceiling: string[] };

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** What the context is read from: the database, and the registry held in memory. */
export interface ContextSources { db: Db; registry: RegistryCache }

/**
 * The history facts the policy reads: grants and events per object, the task's counts, running totals.
 * `prefetched` are the rows of historyRead's statements when the exchange read them in the round trip of its lock.
 */
async function history(db: Db, policy: CompiledPolicy, r: DecisionRequest, prefetched?: unknown[][]): Promise<HistoryInput> {
  const read = historyRead(policy, r);
  return read.facts(db, prefetched ?? await runStatements(db, read.statements));
}

/**
 * The agent's baseline per purpose the request names, for each baseline window of the policy: its grants
 * there, at which resources, with which sensitivity levels (the labels the resources give their scopes).
 */
async function baseline({ db, registry }: ContextSources, policy: CompiledPolicy, r: DecisionRequest): Promise<Record<string, BaselineFacts>> {
  const purposes = [...new Set(r.details.map((d) => str(d.purpose)).filter((p): p is string => p !== undefined))];
  const labels = new Map<string, Map<string, string> | undefined>();
  const labelsOf = (audience: string) => {
    if (!labels.has(audience)) {
      const res = registry.resource(audience);
      labels.set(audience, res ? new Map(res.scopes.map((s) => [s.name, s.sensitivity])) : undefined);
    }
    return labels.get(audience);
  };
  const out: Record<string, BaselineFacts> = {};
  for (const within of new Set(policy.baselines.map((b) => b.within))) {
    for (const purpose of purposes) {
      const facts: BaselineFacts = { grants: 0, resources: [], sensitivities: [] };
      for (const g of await baselineGrants(db, r.client.client_id, purpose, within, r.now)) {
        const known = labelsOf(g.audience);
        if (!known) continue; // a delegation (an agent as audience) is about no resource
        facts.grants += g.grants;
        if (!facts.resources.includes(g.audience)) facts.resources.push(g.audience);
        for (const s of g.scopes) {
          const level = known.get(s);
          if (level && !facts.sensitivities.includes(level)) facts.sensitivities.push(level);
        }
      }
      facts.resources.sort();
      facts.sensitivities.sort();
      out[`${within}|${purpose}`] = facts;
    }
  }
  return out;
}

/**
 * The statements a decision under the user lock reads in the lock's round trip, in order: the task's standing
 * (on a task hop), the agent's for this user, and the history the policy reads. Their rows go to
 * buildDecisionContext as `prefetched`.
 */
export function contextReads(policy: CompiledPolicy, r: DecisionRequest): Statement[] {
  return [
    ...(r.task ? [standingRead({ per: 'task', task: r.task })] : []),
    standingRead({ per: 'agent', client_id: r.client.client_id, user: r.user }),
    ...(policy.usesHistory ? historyRead(policy, r).statements : []),
  ];
}

/**
 * The one builder of a decision's input, for the exchange, `policies/simulate` and `policies/replay`
 * (which re-decides what this recorded): the target and its labels, the ceiling (subject ∩ client ∩
 * target scopes), the task's and the agent's standing, and, as the policy needs them, the history facts
 * and the agent's baselines. A request beyond the ceiling or for an unknown target is refused before
 * any decision. The caller holds the user's decision lock when the policy reads history, and then hands in
 * `prefetched`, the rows of contextReads' statements read in the lock's round trip.
 */
export async function buildDecisionContext(
  sources: ContextSources, policy: CompiledPolicy, r: DecisionRequest, prefetched?: unknown[][],
): Promise<ExchangeContext | Extract<BuiltContext, { ok: false }>> {
  const { db } = sources;
  let target: Target;
  try {
    target = resolveTarget(sources.registry, r.target);
  } catch (err) {
    if (err instanceof ExchangeError) return { ok: false, error: 'invalid_target', description: err.message };
    throw err;
  }
  const targetScopes = new Set(target.scopes.map((s) => s.name));
  const clientScopes = new Set(splitScope(r.client.scope));
  const subjectScopes = r.subjectScopes ?? [...targetScopes];
  const ceiling = subjectScopes.filter((s) => clientScopes.has(s) && targetScopes.has(s));
  const beyond = (r.requestedScopes ?? []).filter((s) => !ceiling.includes(s));
  if (beyond.length) {
    return { ok: false, error: 'invalid_scope', description: scopeLimits(beyond, subjectScopes, clientScopes, targetScopes, r.client.client_id, r.target) };
  }
  // The rows of contextReads when the user lock read them in its round trip; otherwise read here.
  const n = r.task ? 2 : 1;
  const [task, agent, facts, base] = await Promise.all([
    r.task ? (prefetched ? standingFrom(prefetched[0]!) : taskStatus(db, r.task)) : undefined,
    prefetched ? standingFrom(prefetched[n - 1]!) : agentStanding(db, r.client.client_id, r.user),
    policy.usesHistory ? history(db, policy, r, prefetched && prefetched.slice(n)) : undefined,
    policy.baselines.length && target.kind === 'resource' ? baseline(sources, policy, r) : undefined,
  ]);
  const input: DecisionInput = {
    requestedScopes: r.requestedScopes ?? [],
    resource: { identifier: target.kind === 'resource' ? target.identifier : `agent:${target.identifier}`, scopes: target.scopes.filter((s) => ceiling.includes(s.name)) },
    client: { id: r.client.client_id, name: r.client.client_name ?? null, grant_types: r.client.grant_types },
    user: r.user,
    details: r.details,
    delegated: r.delegated,
    ...(target.kind === 'agent' ? { delegateTo: target.identifier } : {}),
    ...(r.sourceIp !== undefined ? { sourceIp: r.sourceIp } : {}),
    ...(r.environment !== undefined ? { environment: r.environment } : {}),
    ...(r.request !== undefined ? { request: r.request } : {}),
    ...(r.inTask !== undefined ? { inTask: r.inTask } : {}),
    ...(r.purpose !== undefined ? { purpose: r.purpose } : {}),
    now: r.now,
    ...(facts ? { history: facts } : {}),
    ...(task ? { task } : {}),
    agent,
    ...(base ? { baseline: base } : {}),
    ...(r.reviewId ? { review: { id: r.reviewId, state: 'unread' } } : {}),
  };
  return { ok: true, input, target, ceiling };
}
