import type { Decision, DecisionInput } from '../policy/decide.ts';
import { decideRequest, type DecisionRequest } from '../policy/request.ts';
import { buildDecisionContext, contextReads } from './context.ts';
import { ParentNotLive, StandingChanged, type Standings } from '../ledger/writer.ts';
import type { Standing } from '../tasks/holds.ts';
import { heldRefusal, taskRefusal, type FreshStandings } from './held.ts';
import { splitScope } from '../validate/common.ts';
import { extendTask, getTask, insertTask } from '../tasks/tasks.ts';
import type { Client } from '../registry/clients.ts';
import { ExchangeError, invalidRequest, invalidScope, invalidTarget } from './errors.ts';
import { mintTaskToken } from './mint.ts';
import type { ExchangeDeps, ExchangeResponse } from './pipeline.ts';
import type { ExchangeRequest } from './parse.ts';
import { recordGrant, recorded, type DecisionRecord } from './record.ts';
import { redeemReview, reviewState, type GateInput } from './review_gate.ts';
import type { Act, Subject } from './subject.ts';
import { resolveTarget, type Target } from './target.ts';
import { TT_TASK } from './token_types.ts';

/** One (resource, scope, detail) of a task start, as the policy decided it. */
interface Pair { resource: string; scope: string; detail: number; decision: Decision; input: DecisionInput }

export interface TaskStart {
  req: ExchangeRequest;
  client: Client;
  subject: Subject;
  act: Act;
  task: string;
  record: DecisionRecord;
  deny: (err: ExchangeError, decision?: Decision) => Promise<never>;
  sourceIp: string;
}

/**
 * Starts a task (requested_token_type urn:intentgate:token-type:task): the user's token, the agent's intent
 * for the whole task and its ceiling (scope, one or more resources, authorization details) in; a task token
 * out. Policy decides the request once per resource (`request: task`), as it would a tool call there: any
 * deny refuses it, any review sends it to a person, and the task may do only what every resource's
 * decision granted. The task token lives the policy's `task_ttl` (default one hour), never beyond the user's
 * token, and is recorded with the task's row in the ledger's transaction.
 */
export async function startTask(deps: ExchangeDeps, s: TaskStart): Promise<ExchangeResponse> {
  const { db, config } = deps;
  const { req, client, subject, record, deny } = s;
  record.audience = config.issuer;
  record.resources = req.resources;
  record.token_kind = 'task';
  if (subject.task) return renewTask(deps, s);
  if (subject.parent) return deny(invalidRequest('a task is started from a user\'s token, not from a token intentgate issued'));
  const other = req.audiences.find((a) => a !== client.client_id);
  if (other !== undefined) return deny(invalidTarget('a task\'s audience, when sent, must be the agent\'s own client_id: the task token is only ever presented by it, at intentgate'));

  const targets: Array<Extract<Target, { kind: 'resource' }>> = [];
  for (const r of req.resources) {
    let t: Target;
    try {
      t = resolveTarget(deps.registry, r);
    } catch (err) {
      if (err instanceof ExchangeError) return deny(invalidTarget(`resource ${r} is not a registered resource`));
      throw err;
    }
    if (t.kind !== 'resource') return deny(invalidTarget(`${r} is an agent, not a resource: a task spans resources (delegate from the task token instead)`));
    targets.push(t);
  }
  const clientScopes = new Set(splitScope(client.scope));
  // Per resource: what the user's token, this client and the resource allow together.
  const ceilings = targets.map((t) => subject.scopes.filter((sc: string) => clientScopes.has(sc) && t.scopes.some((x) => x.name === sc)));
  const everywhere = new Set(ceilings.flat());
  if (req.scope) {
    const beyond = req.scope.filter((sc) => !everywhere.has(sc));
    if (beyond.length) return deny(invalidScope(`scope ${beyond.join(' ')} exceeds what the subject token, this client and the task's resources allow together`));
  }
  const asked = targets.map((t, i) => (req.scope ? req.scope.filter((sc) => ceilings[i]!.includes(sc)) : []));
  const idle = req.scope ? targets.findIndex((_, i) => asked[i]!.length === 0) : -1;
  if (idle >= 0) return deny(invalidScope(`no requested scope is one of ${targets[idle]!.identifier}'s: name a scope for every resource of the task`));

  let policy;
  try {
    policy = deps.policies.current();
  } catch {
    throw new ExchangeError('temporarily_unavailable', 'no valid policy is loaded; nothing can be decided', {}, 503);
  }
  const now = new Date();
  // The same builder as every exchange, simulate and replay: standings, history and baselines included.
  const requests: DecisionRequest[] = targets.map((t, i) => ({
    client, user: subject.user, subjectScopes: subject.scopes, target: t.identifier,
    ...(req.scope ? { requestedScopes: asked[i]! } : {}),
    details: req.details, delegated: s.act.act !== undefined, sourceIp: s.sourceIp, now, request: 'task', inTask: false,
    ...(config.environment ? { environment: config.environment } : {}),
  }));
  // Held for the whole decision, as a tool call's is; each resource's history and the standings are read in
  // the round trip that takes it.
  const reads = policy.usesHistory ? requests.map((r) => contextReads(policy, r)) : [];
  const held = policy.usesHistory ? await deps.userLocks.acquire(`${subject.user.issuer}|${subject.user.sub}`, reads.flat(), db) : undefined;
  try {
    const inputs: DecisionInput[] = [];
    const pairs: Pair[] = [];
    let at = 0;
    for (const [i, t] of targets.entries()) {
      const built = await buildDecisionContext({ db, registry: deps.registry }, policy, requests[i]!, held ? held.rows.slice(at, (at += reads[i]!.length)) : undefined);
      if (!built.ok) return deny(built.error === 'invalid_scope' ? invalidScope(built.description) : invalidTarget(built.description));
      const input = built.input;
      inputs.push(input);
      // Each (scope, detail) pair on its own: a task's tools need different scopes, and a tool call will
      // carry one scope with one detail, decided again then. A scope no detail may use, or a detail no
      // scope serves, is refused; a deny or review rule on any pair decides the whole task.
      const scopes = asked[i]!.length ? asked[i]! : input.resource.scopes.map((x) => x.name);
      const details = req.details.length ? req.details.map((d) => [d]) : [[]];
      for (const scope of scopes) {
        for (const [j, d] of details.entries()) {
          const asked = { ...input, requestedScopes: [scope], details: d };
          pairs.push({ resource: t.identifier, scope, detail: j, decision: decideRequest(policy, asked), input: asked });
        }
      }
    }
    // One resource: its decision's input can be re-decided (replay); several are recorded without one.
    record.context = inputs.length === 1 ? { ...inputs[0]!, now: now.toISOString() } : undefined;
    // No scope asked for: the policy's default, as for a tool call: scopes a deny or review rule touches are
    // left out, as long as some other scope is allowed; only otherwise does that rule decide.
    if (!req.scope) {
      const touched = new Set(pairs.filter((p) => p.decision.outcome !== 'allow' && p.decision.matchedRules.some((id) => policy.rules.get(id)?.effect !== 'allow')).map((p) => `${p.resource} ${p.scope}`));
      const clean = pairs.filter((p) => !touched.has(`${p.resource} ${p.scope}`));
      if (clean.some((p) => p.decision.outcome === 'allow')) pairs.splice(0, pairs.length, ...clean);
    }
    const ruled = (effect: 'deny' | 'review') => pairs.filter((p) => p.decision.outcome === effect && p.decision.matchedRules.some((id) => policy.rules.get(id)?.effect === effect));
    const denied = ruled('deny');
    if (denied.length) {
      const reasons = [...new Set(denied.flatMap((p) => p.decision.reasons))];
      return deny(new ExchangeError('access_denied', `denied by policy: ${reasons.join(', ')}`, { reasons }), denied[0]!.decision);
    }
    const allowed = pairs.filter((p) => p.decision.outcome === 'allow');
    const unserved = req.details.findIndex((_, j) => !allowed.some((p) => p.detail === j));
    const idleScope = req.scope?.find((sc) => !allowed.some((p) => p.scope === sc));
    const reviewed = ruled('review');
    if (!reviewed.length && (unserved >= 0 || idleScope !== undefined || allowed.length === 0)) {
      const what = unserved >= 0 ? `authorization_details[${unserved}] is allowed with none of the task's scopes` : idleScope !== undefined ? `scope ${idleScope} is allowed with none of the task's authorization details` : 'no scope is allowed';
      return deny(new ExchangeError('access_denied', `denied by policy: no_matching_rule (${what})`, { reasons: ['no_matching_rule'] }), (pairs.find((p) => p.decision.outcome === 'deny') ?? pairs[0])?.decision);
    }
    let granted: string[];
    if (reviewed.length) {
      const review = reviewed[0]!.decision;
      const gate: GateInput = {
        db,
        binding: {
          client_id: client.client_id, user: { issuer: subject.user.issuer, sub: subject.user.sub }, task: null,
          scope: req.scope ?? [], resource: req.resources.join(' '), details: req.details, ...(record.cnf_jkt ? { cnf_jkt: record.cnf_jkt } : {}),
        },
        reviewId: req.reviewId,
        decision: { ...review, reasons: [...new Set(reviewed.flatMap((p) => p.decision.reasons))] },
        policy,
        context: { intent: req.intent, details: req.details, request: 'task', resources: req.resources },
        deny,
        at: { task: s.task, client_id: client.client_id, user: { issuer: subject.user.issuer, sub: subject.user.sub } },
        hold: undefined,
      };
      await redeemReview(gate, await reviewState(gate));
      const approved = gate.binding.scope;
      granted = (approved.length ? approved : [...new Set(pairs.map((p) => p.scope))]).filter((sc) => everywhere.has(sc));
    } else {
      granted = [...new Set(allowed.map((p) => p.scope))];
    }
    const decisions = pairs.map((p) => p.decision);
    const ttl = Math.min(policy.taskTtl, subject.exp - Math.floor(Date.now() / 1000));
    if (ttl < 1) return deny(invalidRequest('subject_token has expired'), decisions[0]);

    const minted = await mintTaskToken(deps.keyring, {
      issuer: config.issuer, sub: subject.user.sub, subIssuer: subject.user.issuer, clientId: client.client_id, task: s.task,
      scope: granted, resources: req.resources, details: req.details, act: subject.act, ttl,
      ...(record.cnf_jkt ? { cnfJkt: record.cnf_jkt } : {}),
    });
    const matched = [...new Set(decisions.filter((d) => d.outcome !== 'deny').flatMap((d) => d.matchedRules))];
    // At commit, the agent's standing as it is then: each granted pair must still be granted on it (pipeline.ts).
    const agent = {
      agent: { client_id: client.client_id, issuer: subject.user.issuer, sub: subject.user.sub },
      refuse: (fresh: Standings<unknown>) => {
        for (const p of pairs.filter((x) => granted.includes(x.scope))) {
          const refusal = heldRefusal(policy, p.input, [p.scope], p.input.resource.scopes.map((x) => x.name), fresh as FreshStandings);
          if (refusal) return refusal;
        }
        return undefined;
      },
    };
    try {
      await recorded(() => recordGrant(deps.ledger, { ...record, decision: 'granted', granted_scope: granted, matched_rules: matched, policy_version: policy.version }, minted,
        (trx) => insertTask(trx, {
          task: s.task, client_id: client.client_id, user: { issuer: subject.user.issuer, sub: subject.user.sub }, intent: req.intent,
          scope: granted, resources: req.resources, authorization_details: req.details, task_jti: minted.jti,
          created_at: new Date(minted.iat * 1000), expires_at: new Date(minted.exp * 1000), subject_expires_at: new Date(subject.exp * 1000),
        }), agent));
    } catch (err) {
      // The agent was held for this user after the decision: refused as the hold refuses; nothing was recorded.
      if (err instanceof StandingChanged) return deny(err.refusal as ExchangeError, decisions[0]);
      throw err;
    }
    return {
      access_token: minted.token,
      issued_token_type: TT_TASK,
      token_type: 'N_A',
      expires_in: minted.exp - minted.iat,
      scope: granted.join(' '),
      task: s.task,
      ...(req.details.length ? { authorization_details: req.details } : {}),
    };
  } finally {
    await held?.release();
  }
}

/**
 * Renews a task token (requested and subject token types both the task type): a new task token for the
 * same task, with the same ceiling and key, living the policy's `task_ttl` from now but never beyond the
 * user's token the task was started with. Not decided again: the task was; the old token must still be live
 * when the new one commits, and both stay valid (the new one is its child, so the task's cascade reaches it).
 */
async function renewTask(deps: ExchangeDeps, s: TaskStart): Promise<ExchangeResponse> {
  const { config } = deps;
  const { subject, record, deny, client } = s;
  const ceiling = subject.task!;
  const other = s.req.audiences.find((a) => a !== client.client_id);
  if (other !== undefined) return deny(invalidTarget('a task\'s audience, when sent, must be the agent\'s own client_id'));
  record.resources = ceiling.resources;
  record.authorization_details = ceiling.details;
  record.requested_scope = ceiling.scope;
  let policy;
  try {
    policy = deps.policies.current();
  } catch {
    throw new ExchangeError('temporarily_unavailable', 'no valid policy is loaded; nothing can be decided', {}, 503);
  }
  const row = await getTask(deps.db, s.task);
  const userExp = row?.subject_expires_at ? Math.floor(new Date(row.subject_expires_at).getTime() / 1000) : subject.exp;
  const ttl = Math.min(policy.taskTtl, userExp - Math.floor(Date.now() / 1000));
  if (ttl < 1) return deny(invalidRequest('the user\'s token this task was started with has expired: start a new task'));
  const minted = await mintTaskToken(deps.keyring, {
    issuer: config.issuer, sub: subject.user.sub, subIssuer: subject.user.issuer, clientId: client.client_id, task: s.task,
    scope: ceiling.scope, resources: ceiling.resources, details: ceiling.details, act: subject.act, ttl,
    ...(record.cnf_jkt ? { cnfJkt: record.cnf_jkt } : {}),
  });
  // At commit, the task's standing as it is then: a task suspended or revoked since is refused as its token is.
  const standing = { task: s.task, refuse: (fresh: Standings<unknown>) => taskRefusal(fresh.task as Standing | undefined) };
  try {
    await recorded(() => recordGrant(deps.ledger, { ...record, decision: 'granted', granted_scope: ceiling.scope, policy_version: policy.version }, minted,
      (trx) => extendTask(trx, s.task, new Date(minted.exp * 1000)), standing));
  } catch (err) {
    if (err instanceof ParentNotLive) return deny(invalidRequest('subject_token has been revoked or is no longer live'));
    if (err instanceof StandingChanged) return deny(err.refusal as ExchangeError);
    throw err;
  }
  return {
    access_token: minted.token,
    issued_token_type: TT_TASK,
    token_type: 'N_A',
    expires_in: minted.exp - minted.iat,
    scope: ceiling.scope.join(' '),
    task: s.task,
    ...(ceiling.details.length ? { authorization_details: ceiling.details } : {}),
  };
}
