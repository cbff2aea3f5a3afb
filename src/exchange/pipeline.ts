import { randomBytes } from 'node:crypto';
import type { Config } from '../config/index.ts';
import type { Keyring } from '../keys/keyring.ts';
import { decide, type Decision, type DecisionInput } from '../policy/decide.ts';
import type { CompiledPolicy } from '../policy/compile.ts';
import { historyFromRows, historyReads, type HistoryFacts } from '../tasks/history.ts';
import type { UserLocks } from '../tasks/user_lock.ts';
import type { Client } from '../registry/clients.ts';
import type { PolicyStore } from '../policy/store.ts';
import { ParentNotLive, type LedgerWriter } from '../ledger/writer.ts';
import { splitScope } from '../registry/common.ts';
import type { TrustedIssuer } from '../registry/issuers.ts';
import type { RegistryCache } from '../registry/cache.ts';
import type { Db } from '../store/db.ts';
import { checkActor } from './actor.ts';
import { senderKey, type SenderDeps } from './dpop.ts';
import { canonical, type AuthorizationDetail, type DetailTypes } from './details.ts';
import { ExchangeError, invalidRequest, invalidScope, invalidDetails } from './errors.ts';
import type { IssuerKeys } from './issuer_keys.ts';
import { mintAccessToken } from './mint.ts';
import { applyCounters, reviewGate, suspendIfBehaviourRule, type GateInput } from './review_gate.ts';
import { taskStatus } from '../tasks/behaviour.ts';
import { parseExchange, type ExchangeRequest } from './parse.ts';
import { recordDenial, recordGrant, type DecisionRecord } from './record.ts';
import { authenticateSubject, type Act, type Subject } from './subject.ts';
import { resolveTarget, scopeLimits, type Target } from './target.ts';
import { TT_ACCESS_TOKEN } from './token_types.ts';

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
  token_type: 'Bearer' | 'DPoP';
  expires_in: number;
  scope: string;
  authorization_details?: AuthorizationDetail[];
}

/** Fail closed: a decision that could not be recorded is answered as unavailable, whatever broke. */
async function recorded(write: () => Promise<void>): Promise<void> {
  try {
    await write();
  } catch (err) {
    if (err instanceof ParentNotLive) throw err;
    throw new ExchangeError('temporarily_unavailable', 'the decision could not be recorded; no token was issued; retry later', {}, 503, err);
  }
}

function depth(act: Act | undefined): number {
  let n = 0;
  for (let a = act; a; a = a.act) n++;
  return n;
}

/**
 * No hop widens details. A parent intentgate issued grants exactly the details it carries, and a parent
 * that carried none grants no detail-level action at all: each requested detail must be one of the
 * parent's (RFC 9396's analogue of invalid_scope). Only a first exchange (no parent) is left to policy.
 */
function narrowDetails(requested: AuthorizationDetail[], parent: Subject['parent']): AuthorizationDetail[] {
  if (!parent) return requested;
  const carried = parent.details;
  if (requested.length === 0) return carried;
  const allowed = new Set(carried.map(canonical));
  requested.forEach((d, i) => {
    if (!allowed.has(canonical(d))) {
      throw invalidDetails(carried.length === 0
        ? `authorization_details[${i}] is refused: the subject token carries no authorization details, and no hop adds any`
        : `authorization_details[${i}] is not among the subject token's authorization details`);
    }
  });
  return requested;
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

  const subject: Subject = await authenticateSubject(
    { db, issuer: config.issuer, keyring: deps.keyring, issuerKeys: deps.issuerKeys, clockSkew: config.exchange.clockSkew, builtInIssuers: deps.builtInIssuers, registry: deps.registry },
    req.subjectToken,
    client.client_id,
  );
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
      reasons: (err.extra.reasons as string[] | undefined) ?? [],
      matched_rules: decision?.matchedRules ?? [],
      policy_version: decision?.policyVersion,
    }, err.message));
    call.audit.decisionRecorded = true;
    throw err;
  };

  let target: Target;
  try {
    target = resolveTarget(deps.registry, req.target);
  } catch (err) {
    if (err instanceof ExchangeError) return deny(err);
    throw err;
  }

  const targetScopes = new Set(target.scopes.map((s) => s.name));
  const clientScopes = new Set(splitScope(client.scope));
  const ceiling = subject.scopes.filter((s) => clientScopes.has(s) && targetScopes.has(s));
  if (req.scope) {
    const beyond = req.scope.filter((s) => !ceiling.includes(s));
    if (beyond.length) {
      return deny(invalidScope(scopeLimits(beyond, subject.scopes, clientScopes, targetScopes, client.client_id, req.target)));
    }
  }
  let details: AuthorizationDetail[];
  try {
    details = narrowDetails(req.details, subject.parent);
  } catch (err) {
    if (err instanceof ExchangeError) return deny(err);
    throw err;
  }
  record.authorization_details = details;

  // A task a behaviour rule suspended takes no new exchanges until a person lifts the suspension; a
  // downgraded one goes on with read scopes only.
  const state = subject.parent ? await taskStatus(db, task) : undefined;
  if (state?.status === 'suspended') {
    return deny(new ExchangeError('access_denied', 'the task is suspended pending review', { reasons: ['task_suspended'], review_id: state.review_id }));
  }
  if (state?.status === 'downgraded') {
    const readOnly = new Set(target.scopes.filter((s) => s.operation === 'read').map((s) => s.name));
    const writes = (req.scope ?? []).filter((s) => !readOnly.has(s));
    if (writes.length) return deny(new ExchangeError('access_denied', `the task is downgraded to read scopes: ${writes.join(' ')} refused`, { reasons: ['task_downgraded'] }));
    for (let i = ceiling.length - 1; i >= 0; i--) if (!readOnly.has(ceiling[i]!)) ceiling.splice(i, 1);
  }

  let policy;
  try {
    policy = deps.policies.current();
  } catch {
    throw new ExchangeError('temporarily_unavailable', 'no valid policy is loaded; nothing can be decided', {}, 503);
  }
  // A policy that reads history decides each user's requests one at a time, from reading the history
  // until this decision's record commits (lock order: user, then ledger head).
  // The history is read in the round trip that takes the lock.
  const held = policy.usesHistory
    ? await deps.userLocks.acquire(`${subject.user.issuer}|${subject.user.sub}`, historyReads(subject.user, req.target, subject.parent?.task, details), db)
    : undefined;
  try {
    const history = held ? await historyFromRows(db, subject.user, req.target, subject.parent?.task, details, held.rows) : undefined;
    return await decideMintRecord(deps, { policy, history, req, client, subject, target, ceiling, details, act, task, record, deny, sourceIp: call.sourceIp });
  } finally {
    await held?.release();
  }
}

interface Decided {
  policy: CompiledPolicy;
  history: HistoryFacts | undefined;
  req: ExchangeRequest;
  client: Client;
  subject: Subject;
  target: Target;
  ceiling: string[];
  details: AuthorizationDetail[];
  act: Act;
  task: string;
  record: DecisionRecord;
  deny: (err: ExchangeError, decision?: Decision) => Promise<never>;
  sourceIp: string;
}

/** decide → mint → record, for one request whose inputs are authenticated and bounded. */
async function decideMintRecord(deps: ExchangeDeps, c: Decided): Promise<ExchangeResponse> {
  const { config } = deps;
  const { policy, history, req, client, subject, target, ceiling, details, act, task, record, deny } = c;
  const input: DecisionInput = {
    requestedScopes: req.scope ?? [],
    resource: { identifier: target.kind === 'resource' ? target.identifier : `agent:${target.identifier}`, scopes: target.scopes.filter((s) => ceiling.includes(s.name)) },
    client: { id: client.client_id, name: client.client_name, grant_types: client.grant_types },
    user: subject.user,
    details,
    delegated: depth(act) > 1,
    ...(target.kind === 'agent' ? { delegateTo: target.identifier } : {}),
    sourceIp: c.sourceIp,
    ...(config.environment ? { environment: config.environment } : {}),
    now: new Date(),
    ...(history ? { history } : {}),
  };
  record.context = { ...input, now: input.now.toISOString() };
  const decision = decide(policy, input);
  const gate: GateInput = {
    db: deps.db,
    binding: {
      client_id: client.client_id, user: { issuer: subject.user.issuer, sub: subject.user.sub }, task: subject.parent?.task ?? null,
      scope: req.scope ?? [], resource: req.target, details, ...(record.cnf_jkt ? { cnf_jkt: record.cnf_jkt } : {}),
    },
    reviewId: req.reviewId,
    decision,
    policy,
    context: { intent: req.intent, details, history: history ?? null },
    deny,
  };
  let granted: string[];
  if (decision.outcome === 'deny') {
    await suspendIfBehaviourRule(gate, task);
    try {
      return await deny(new ExchangeError('access_denied', `denied by policy: ${decision.reasons.join(', ')}`, { reasons: decision.reasons }), decision);
    } finally {
      // The refusal stands whatever the counters do; a counter that cannot be read changes nothing.
      await applyCounters(gate, task, 'denied').catch(() => undefined);
    }
  } else if (decision.outcome === 'review') {
    granted = (await reviewGate(gate)).filter((s) => ceiling.includes(s));
  } else {
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
    await recorded(() => recordGrant(deps.ledger, { ...record, decision: 'granted', granted_scope: granted, matched_rules: decision.matchedRules, policy_version: decision.policyVersion }, minted));
  } catch (err) {
    // The parent was revoked after the decision: refused, and recorded as such; the child never existed.
    if (err instanceof ParentNotLive) return deny(invalidRequest('subject_token has been revoked or is no longer live'), decision);
    throw err;
  }
  await applyCounters(gate, task, 'granted').catch(() => undefined);
  return {
    access_token: minted.token,
    issued_token_type: TT_ACCESS_TOKEN,
    token_type: record.cnf_jkt ? 'DPoP' : 'Bearer',
    expires_in: minted.exp - minted.iat,
    scope: granted.join(' '),
    ...(details.length ? { authorization_details: details } : {}),
  };
}
