import { randomBytes } from 'node:crypto';
import type { Config } from '../config/index.ts';
import type { Keyring } from '../keys/keyring.ts';
import type { Decision, DecisionInput } from '../policy/decide.ts';
import type { CompiledPolicy } from '../policy/compile.ts';
import type { UserLocks } from '../tasks/user_lock.ts';
import type { Client } from '../registry/clients.ts';
import type { PolicyStore } from '../policy/store.ts';
import { ParentNotLive, StandingChanged, type LedgerWriter, type Standings } from '../ledger/writer.ts';
import { heldRefusal, standingRefusal, type FreshStandings } from './held.ts';
import { splitScope } from '../validate/common.ts';
import { getClient } from '../registry/clients.ts';
import type { TrustedIssuer } from '../registry/issuers.ts';
import type { RegistryCache } from '../registry/cache.ts';
import type { Db } from '../store/db.ts';
import { checkActor } from './actor.ts';
import { senderKey, type SenderDeps } from './dpop.ts';
import { canonical, type AuthorizationDetail, type DetailTypes } from './details.ts';
import { ExchangeError, invalidRequest, invalidScope, invalidDetails, invalidTarget } from './errors.ts';
import type { IssuerKeys } from './issuer_keys.ts';
import { mintAccessToken } from './mint.ts';
import { applyCounters, redeemReview, reviewState, suspendIfBehaviourRule, type GateInput } from './review_gate.ts';
import { applyOutcome, suspendHold } from '../tasks/behaviour.ts';
import type { HoldTarget, Standing } from '../tasks/holds.ts';
import type { HoldScope } from '../policy/compile.ts';
import { decideRequest, strongestSignal, type DecisionRequest, type RequestDecision } from '../policy/request.ts';
import { buildDecisionContext, contextReads, type ExchangeContext } from './context.ts';
import { parseExchange, type ExchangeRequest } from './parse.ts';
import { recordDenial, recordGrant, recorded, type DecisionRecord } from './record.ts';
import { authenticateSubject, type Act, type Subject } from './subject.ts';
import { TT_ACCESS_TOKEN } from './token_types.ts';
import { resolveTarget, type Target } from './target.ts';
import { TT_TASK } from './token_types.ts';
import { covers, leavesTask } from './coverage.ts';
import { startTask } from './task_start.ts';
import { authenticateTaskToken } from './task_subject.ts';
import { getTask } from '../tasks/tasks.ts';

export interface ExchangeDeps {
  db: Db;
  config: Config;
  keyring: Keyring;
  issuerKeys: IssuerKeys;
  detailTypes: DetailTypes;
  policies: PolicyStore;
  builtInIssuers: ReadonlyMap<string, TrustedIssuer>;
  /** Clients, resources and trusted issuers, in memory. */
  registry: RegistryCache;
  ledger: LedgerWriter;
  userLocks: UserLocks;
  dpop: SenderDeps;
}

export interface ExchangeCall {
  params: Record<string, string | string[] | undefined>;
  /** False when oidc-provider filled `resource` in itself (it does so whenever details are sent). */
  resourceWasSent: boolean;
  clientId: string;
  sourceIp: string;
  /** The DPoP header(s) of the request (RFC 9449), unparsed. */
  dpop: string | string[] | undefined;
  /** Filled in as the request is understood, for the record of a refusal (src/http/refusal_audit.ts). */
  audit: ExchangeAudit;
}

export interface ExchangeAudit {
  user?: { issuer: string; sub: string };
  intent?: string;
  target?: string;
  /** Set once the refusal was recorded as a decision (`exchange.denied`): it needs no other entry. */
  decisionRecorded?: boolean;
}

export interface ExchangeResponse {
  access_token: string;
  issued_token_type: string;
  /** `N_A` for a task token (RFC 8693 §2.2.1: it is not an access token). */
  token_type: 'Bearer' | 'DPoP' | 'N_A';
  expires_in: number;
  scope: string;
  /** A started task's id. */
  task?: string;
  authorization_details?: AuthorizationDetail[];
}


function depth(act: Act | undefined): number {
  let n = 0;
  for (let a = act; a; a = a.act) n++;
  return n;
}

/**
 * No hop widens details. A parent intentgate issued grants at most the details it carries, and a parent
 * that carried none grants no detail-level action at all: each requested detail must be covered by one of
 * the parent's (src/exchange/coverage.ts: equal, or narrower; RFC 9396's analogue of invalid_scope). Only a
 * first exchange (no parent) is left to policy.
 */
function narrowDetails(requested: AuthorizationDetail[], parent: Subject['parent']): AuthorizationDetail[] {
  if (!parent) return requested;
  const carried = parent.details;
  if (requested.length === 0) return carried;
  return requested.map((d, i) => {
    for (const c of carried) {
      const withPurpose = d.purpose === undefined && c.purpose !== undefined ? { ...d, purpose: c.purpose } : d;
      if (covers(c, withPurpose)) return withPurpose;
    }
    throw invalidDetails(carried.length === 0
      ? `authorization_details[${i}] is refused: the subject token carries no authorization details, and no hop adds any`
      : `authorization_details[${i}] is not among the subject token's authorization details`);
  });
}

/**
 * The token-exchange pipeline: parse → authenticate → context → decide → mint → record. Each step is
 * its own module; this function only orders them and keeps the record of what was decided.
 */
export async function runExchange(deps: ExchangeDeps, call: ExchangeCall): Promise<ExchangeResponse> {
  const { db, config } = deps;
  const req = parseExchange(call.params, call.resourceWasSent, config.exchange, deps.detailTypes);
  Object.assign(call.audit, { intent: req.intent, target: req.target });
  const client = deps.registry.client(call.clientId);
  if (!client) throw new ExchangeError('invalid_client', 'client is not registered', {}, 401);

  const subjectDeps = { db, issuer: config.issuer, keyring: deps.keyring, issuerKeys: deps.issuerKeys, clockSkew: config.exchange.clockSkew, builtInIssuers: deps.builtInIssuers, registry: deps.registry };
  const subject: Subject = req.subjectIsTask
    ? await authenticateTaskToken(subjectDeps, req.subjectToken, client.client_id)
    : await authenticateSubject(subjectDeps, req.subjectToken, client.client_id);
  call.audit.user = { issuer: subject.user.issuer, sub: subject.user.sub };
  const actorJkt = await checkActor({ db, issuer: config.issuer, ownKeys: () => deps.keyring.verifier(), clockSkew: config.exchange.clockSkew, maxLifetime: config.exchange.clientAssertionMaxLifetime },
    { id: client.client_id, jwks: client.jwks }, req.actorToken, subject);
  const cnfJkt = await senderKey(deps.dpop, {
    header: call.dpop, subjectJkt: subject.cnfJkt, actorJkt, delegated: subject.parent?.audience === client.client_id,
  });

  const previousAct = subject.act;
  const act: Act = { sub: client.client_id, ...(previousAct ? { act: previousAct } : {}) };
  if (depth(act) > config.exchange.maxDelegationDepth) {
    throw invalidRequest(`the delegation chain would be deeper than ${config.exchange.maxDelegationDepth} hops`);
  }
  const task = subject.parent?.task ?? `tsk_${randomBytes(12).toString('base64url')}`;
  const record: DecisionRecord = {
    client_id: client.client_id,
    user: { issuer: subject.user.issuer, sub: subject.user.sub },
    act,
    intent: req.intent,
    authorization_details: req.details,
    requested_scope: req.scope,
    granted_scope: [],
    audience: req.target,
    decision: 'denied',
    error: undefined,
    reasons: [],
    matched_rules: [],
    policy_version: undefined,
    parent_jti: subject.parent?.jti,
    task,
    context: undefined,
    cnf_jkt: cnfJkt,
    subject_claims: subject.user.claims,
  };
  // From here on every outcome is a decision, and is recorded before it is answered.
  const deny = async (err: ExchangeError, decision?: Decision): Promise<never> => {
    await recorded(() => recordDenial(deps.ledger, {
      ...record,
      error: err.code,
      // A review's answer carries no reasons; the record still says why a person must decide.
      reasons: (err.extra.reasons as string[] | undefined) ?? (err.code === 'authorization_pending' ? decision?.reasons : undefined) ?? [],
      matched_rules: decision?.matchedRules ?? [],
      policy_version: decision?.policyVersion,
      ...(decision ? { outcome: decision.outcome } : {}),
    }, err.message));
    call.audit.decisionRecorded = true;
    throw err;
  };
  if (req.requestedTokenType === TT_TASK) return startTask(deps, { req, client, subject, act, task, record, deny, sourceIp: call.sourceIp });
  record.token_kind = 'access';

  // Within a task, refusals count toward its repeated denials, whatever the refusal.
  const denyCounted = async (err: ExchangeError): Promise<never> => {
    if (!subject.task) return deny(err);
    try {
      return await deny(err);
    } finally {
      await countDenial(deps, record, task);
    }
  };
  // A tool call that leaves its task is refused, but the policy still sees what was attempted (a
  // `suspend_task` rule may stop the whole task), and the refusal counts toward repeated denials.
  let outOfTask: ExchangeError | undefined;
  let details: AuthorizationDetail[] = req.details;
  let target: Target;
  try {
    target = resolveTarget(deps.registry, req.target);
  } catch (err) {
    if (err instanceof ExchangeError) return denyCounted(err);
    throw err;
  }
  if (target.kind === 'agent') record.token_kind = 'delegation';
  if (subject.task) {
    const clientScopes = new Set(splitScope(client.scope));
    const ceiling = subject.scopes.filter((s) => clientScopes.has(s) && target.scopes.some((x) => x.name === s));
    const within = leavesTask(subject.task, target, req.scope, ceiling, req.details);
    if (within instanceof ExchangeError) outOfTask = within;
    else details = within.details;
  } else {
    try {
      details = narrowDetails(req.details, subject.parent);
    } catch (err) {
      if (err instanceof ExchangeError) return deny(err);
      throw err;
    }
  }
  record.authorization_details = details;
  const inTask = subject.task !== undefined || (subject.parent !== undefined && Boolean((await getTask(db, task))?.task_jti));

  let policy;
  try {
    policy = deps.policies.current();
  } catch {
    throw new ExchangeError('temporarily_unavailable', 'no valid policy is loaded; nothing can be decided', {}, 503);
  }
  // The same builder as policies/simulate: the target, the ceiling, the task's and agent's standing, history, baselines.
  // An attempt that leaves its task is decided against everything the target offers this client.
  const request: DecisionRequest = {
    client, user: subject.user, ...(outOfTask ? {} : { subjectScopes: subject.scopes }), target: req.target, ...(req.scope ? { requestedScopes: req.scope } : {}),
    details, delegated: depth(act) > 1, sourceIp: call.sourceIp, now: new Date(), inTask,
    ...(subject.task?.purpose ? { purpose: subject.task.purpose } : {}),
    ...(config.environment ? { environment: config.environment } : {}),
    ...(subject.parent ? { task: subject.parent.task } : {}), ...(req.reviewId ? { reviewId: req.reviewId } : {}),
  };
  // A policy that reads history decides each user's requests one at a time, from reading the history
  // until this decision's record commits (lock order: user, then ledger head).
  // The history and the standings are read in the round trip that takes the lock.
  const held = policy.usesHistory
    ? await deps.userLocks.acquire(`${subject.user.issuer}|${subject.user.sub}`, contextReads(policy, request), db)
    : undefined;
  try {
    const built = await buildDecisionContext({ db, registry: deps.registry }, policy, request, held?.rows);
    if (!built.ok) return denyCounted(outOfTask ?? (built.error === 'invalid_scope' ? invalidScope(built.description) : invalidTarget(built.description)));
    return await decideMintRecord(deps, { policy, built, req, client, subject, act, task, record, deny, outOfTask });
  } finally {
    await held?.release();
  }
}

interface Decided {
  policy: CompiledPolicy;
  built: ExchangeContext;
  req: ExchangeRequest;
  client: Client;
  subject: Subject;
  act: Act;
  task: string;
  record: DecisionRecord;
  deny: (err: ExchangeError, decision?: Decision) => Promise<never>;
  /** The request leaves its task: refused with this, after the policy has seen the attempt. */
  outOfTask: ExchangeError | undefined;
}

/** A refusal within a task counts toward its repeated denials; the refusal stands whatever the counters do. */
async function countDenial(deps: ExchangeDeps, record: DecisionRecord, task: string): Promise<void> {
  let policy;
  try {
    policy = deps.policies.current();
  } catch {
    return;
  }
  const binding = {
    client_id: record.client_id, user: record.user!, task, scope: record.requested_scope ?? [], resource: record.audience ?? '', details: record.authorization_details,
  };
  await applyCounters({
    db: deps.db, binding, reviewId: undefined, decision: { outcome: 'deny', grantedScopes: [], matchedRules: [], reasons: [], policyVersion: policy.version }, policy, context: {},
    deny: async (e) => { throw e; }, at: { task, client_id: record.client_id, user: record.user! }, hold: undefined,
  }, 'denied')
    .catch(() => undefined);
}

/** decide → mint → record, for one request whose context is built. */
async function decideMintRecord(deps: ExchangeDeps, c: Decided): Promise<ExchangeResponse> {
  const { config } = deps;
  const { policy, built, req, client, subject, act, task, record, deny, outOfTask } = c;
  const { input, target, ceiling } = built;
  const details = input.details;
  // A refusal for leaving the task is not the policy's decision: it keeps no context to be re-decided.
  record.context = outOfTask ? undefined : { ...input, now: input.now.toISOString() };
  let decision = decideRequest(policy, input);
  record.signals = decision.signals;
  const holdOf = (per: HoldScope): HoldTarget => (per === 'task' ? { per: 'task', task } : { per: 'agent', client_id: client.client_id, user: { issuer: subject.user.issuer, sub: subject.user.sub } });
  const gate: GateInput = {
    db: deps.db,
    binding: {
      client_id: client.client_id, user: { issuer: subject.user.issuer, sub: subject.user.sub }, task: subject.parent?.task ?? null,
      scope: req.scope ?? [], resource: req.target, details, ...(record.cnf_jkt ? { cnf_jkt: record.cnf_jkt } : {}),
    },
    reviewId: req.reviewId,
    decision,
    policy,
    context: { intent: req.intent, details, history: input.history ?? null, ...(decision.signals.length ? { signals: decision.signals } : {}) },
    deny,
    at: { task, client_id: client.client_id, user: { issuer: subject.user.issuer, sub: subject.user.sub } },
    hold: undefined,
  };
  // The strongest signal shaped the decision; its outcome is applied to what it holds (the task, or the agent for this user).
  const worst = strongestSignal(decision.signals);
  const downgradeHold = async () => {
    if (worst?.outcome === 'downgrade') await applyOutcome(deps.db, holdOf(worst.per), { status: 'active', review_id: null }, 'downgrade', worst.rule, gate.binding, gate.context, worst.evidence);
  };
  let granted: string[];
  if (outOfTask) {
    if (decision.outcome === 'deny') await suspendIfBehaviourRule(gate, task);
    try {
      return await deny(outOfTask);
    } finally {
      await applyCounters(gate, 'denied').catch(() => undefined);
    }
  }
  if (decision.outcome === 'deny') {
    const refusal = standingRefusal(decision, input);
    try {
      await downgradeHold();
      if (refusal) return await deny(refusal, decision);
      if (worst?.outcome === 'suspend') {
        // Baseline drift with outcome suspend: the task (or the agent, for this user) is held for a person.
        const reviewId = await suspendHold(deps.db, holdOf(worst.per), gate.binding, { ...gate.context, rule: [worst.rule], evidence: worst.evidence }, [worst.rule]);
        return await deny(new ExchangeError('access_denied', `suspended for review: ${worst.rule} (baseline drift)`, { reasons: [...decision.reasons, `${worst.per}_suspended`], review_id: reviewId }), decision);
      }
      await suspendIfBehaviourRule(gate, task);
      return await deny(new ExchangeError('access_denied', `denied by policy: ${decision.reasons.join(', ')}`, { reasons: decision.reasons }), decision);
    } finally {
      // The refusal stands whatever the counters do; a counter that cannot be read changes nothing.
      await applyCounters(gate, 'denied').catch(() => undefined);
    }
  } else if (decision.outcome === 'review') {
    // A drift the policy sends to a person downgrades its target at once, held by the review this opens.
    if (worst?.outcome === 'review') gate.hold = { target: holdOf(worst.per), rule: worst.rule, evidence: worst.evidence };
    await downgradeHold();
    const state = await reviewState(gate);
    input.review = { id: req.reviewId!, state };
    record.context = { ...input, now: input.now.toISOString() };
    decision = decideRequest(policy, input);
    gate.decision = decision;
    await redeemReview(gate, state);
    granted = decision.grantedScopes.filter((s) => ceiling.includes(s));
  } else {
    // Baseline drift with outcome downgrade: this request was decided downgraded; the hold keeps it so.
    await downgradeHold();
    // A policy default (no scope requested) is still never more than the ceiling.
    granted = decision.grantedScopes.filter((s) => ceiling.includes(s));
  }

  const now = Math.floor(Date.now() / 1000);
  const ttl = Math.min(
    decision.ttl ?? config.accessTokenTtl,
    (target.kind === 'resource' ? target.resource.access_token_ttl : null) ?? config.accessTokenTtl,
    config.accessTokenTtl,
    subject.exp - now,
  );
  if (ttl < 1) return deny(invalidRequest('subject_token has expired'), decision);

  const minted = await mintAccessToken(deps.keyring, {
    issuer: config.issuer, sub: subject.user.sub, subIssuer: subject.user.issuer, audience: req.target, clientId: client.client_id, scope: granted, act, task, ttl, details,
    ...(record.cnf_jkt ? { cnfJkt: record.cnf_jkt } : {}),
  });
  try {
    // At commit, the agent's standing and, inside a task, the task's, as they are then (src/exchange/held.ts).
    const standing = {
      agent: { client_id: client.client_id, issuer: subject.user.issuer, sub: subject.user.sub },
      ...(input.task ? { task } : {}),
      refuse: (fresh: Standings<unknown>) => heldRefusal(policy, input, granted, ceiling, fresh as FreshStandings),
    };
    await recorded(() => recordGrant(deps.ledger, { ...record, decision: 'granted', outcome: decision.outcome, granted_scope: granted, matched_rules: decision.matchedRules, policy_version: decision.policyVersion }, minted, undefined, standing));
  } catch (err) {
    // The parent was revoked after the decision: refused, and recorded as such; the child never existed.
    if (err instanceof ParentNotLive) return deny(invalidRequest('subject_token has been revoked or is no longer live'), decision);
    // The agent (for this user) or the task was held after the decision: refused as the hold refuses; nothing was recorded.
    if (err instanceof StandingChanged) {
      try {
        return await deny(err.refusal as ExchangeError, decision);
      } finally {
        await applyCounters(gate, 'denied').catch(() => undefined);
      }
    }
    throw err;
  }
  await applyCounters(gate, 'granted').catch(() => undefined);
  return {
    access_token: minted.token,
    issued_token_type: TT_ACCESS_TOKEN,
    token_type: record.cnf_jkt ? 'DPoP' : 'Bearer',
    expires_in: minted.exp - minted.iat,
    scope: granted.join(' '),
    ...(details.length ? { authorization_details: details } : {}),
  };
}
