import { SIGNING_ALGS } from '../keys/keyring.ts';
import { rethrowAsStorageFailure } from '../store/errors.ts';
import { getTask } from '../tasks/tasks.ts';
import { isLive } from '../tokens/live.ts';
import type { AuthorizationDetail } from './details.ts';
import { ExchangeError, invalidRequest } from './errors.ts';
import { TASK_TOKEN_TYP } from './mint.ts';
import { actOf, checkSub, checkTimeClaims, jktOf, peek, verify, type Subject, type SubjectDeps } from './subject.ts';
import { issuedToken } from '../tokens/issued.ts';

/**
 * Authenticates a task token presented as the subject (`subject_token_type` urn:intentgate:token-type:task):
 * intentgate's signature, `typ` task+jwt, `aud` intentgate itself, presented by the agent that started the
 * task, and live in the issued-token index. A suspended task answers `access_denied` (`task_suspended`, with
 * the review that can lift it), so the agent knows to wait rather than start over.
 */
export async function authenticateTaskToken(deps: SubjectDeps, token: string, clientId: string): Promise<Subject> {
  const { claims, jws } = peek(token, 'subject_token');
  if (claims.iss !== deps.issuer) throw invalidRequest('subject_token_type is the task token type, but subject_token is not a task token this server issued');
  const { payload } = await verify(jws, deps.keyring.verifier(), {
    issuer: deps.issuer,
    audience: deps.issuer,
    typ: TASK_TOKEN_TYP,
    algorithms: [...SIGNING_ALGS],
    clockTolerance: deps.clockSkew,
    requiredClaims: ['exp', 'iat', 'jti', 'sub', 'client_id', 'task', 'aud'],
  }, 'subject_token');
  checkTimeClaims(payload, deps.clockSkew, 'subject_token');
  if (payload.client_id !== clientId) throw invalidRequest('subject_token is another agent\'s task token: only the agent that started a task presents it');
  const [row, task] = await Promise.all([
    issuedToken(deps.db, String(payload.jti)),
    getTask(deps.db, String(payload.task)),
  ]).catch(rethrowAsStorageFailure);
  if (!row || row.kind !== 'task' || !task || row.task !== task.task || !task.task_jti) throw invalidRequest('subject_token is not a task token this server recorded');
  if (task.status === 'suspended' || row.status === 'suspended') {
    throw new ExchangeError('access_denied', 'the task is suspended pending review', { reasons: ['task_suspended'], ...(task.review_id ? { review_id: task.review_id } : {}) });
  }
  if (task.status === 'revoked' || !isLive(row)) throw invalidRequest('subject_token has been revoked or is no longer live');
  if (!row.subject_issuer) throw invalidRequest('subject_token does not represent a user');
  const details = (task.authorization_details ?? []) as AuthorizationDetail[];
  const scopes = (task.scope ?? '').split(' ').filter(Boolean);
  return {
    user: { issuer: row.subject_issuer, sub: checkSub(payload), claims: (row.subject_claims as Record<string, unknown> | null) ?? {} },
    act: actOf(payload.act),
    scopes,
    exp: payload.exp!,
    // Tool-call tokens are children of the task token: revoking or suspending the task reaches all of them.
    parent: { jti: payload.jti!, task: task.task, act: actOf(payload.act), details, audience: deps.issuer },
    mayAct: undefined,
    cnfJkt: jktOf(payload, 'subject_token'),
    task: { scope: scopes, resources: task.resources ?? [], details, purpose: task.purpose },
  };
}
