import type { ExchangeSettings } from '../config/index.ts';
import type { AuthorizationDetail, DetailTypes } from './details.ts';
import { invalidRequest, invalidScope, invalidTarget } from './errors.ts';
import { normalizeIntent } from './intent.ts';
import { ACCEPTED_INPUT_TYPES, KNOWN_UNSUPPORTED_TYPES, TT_ACCESS_TOKEN, TT_JWT, TT_TASK } from './token_types.ts';

export interface ExchangeRequest {
  subjectToken: string;
  /** The subject is a task token (subject_token_type urn:intentgate:token-type:task). */
  subjectIsTask: boolean;
  actorToken: string | undefined;
  /** The one target: a resource identifier or an agent's client_id (delegation); a task's first resource. */
  target: string;
  /** A task's resources (one or more); for any other request, the one target. */
  resources: string[];
  /** The audience values sent; a task request may only name the agent itself. */
  audiences: string[];
  /** Requested scopes; undefined when the scope parameter was absent (the policy default applies). */
  scope: string[] | undefined;
  requestedTokenType: typeof TT_ACCESS_TOKEN | typeof TT_JWT | typeof TT_TASK;
  intent: string | undefined;
  details: AuthorizationDetail[];
  /** The review this request waits on, when it is asked again after `authorization_pending`. */
  reviewId: string | undefined;
}

/** Parameters this grant takes; resource and audience may repeat (RFC 8693 §2.1), nothing else may. */
export const EXCHANGE_PARAMS = [
  'subject_token', 'subject_token_type', 'actor_token', 'actor_token_type', 'resource', 'audience', 'scope',
  'requested_token_type', 'intent', 'authorization_details', 'review_id',
];
export const REPEATABLE_PARAMS = ['resource', 'audience'];

type Params = Record<string, string | string[] | undefined>;

function single(params: Params, name: string): string | undefined {
  const v = params[name];
  if (Array.isArray(v)) throw invalidRequest(`${name} must not be provided twice`);
  return v === '' ? undefined : v;
}

function list(params: Params, name: string): string[] {
  const v = params[name];
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).filter((x) => x !== '');
}

function tokenType(value: string | undefined, name: string): void {
  if (value === undefined) throw invalidRequest(`${name} is required`);
  if (ACCEPTED_INPUT_TYPES.has(value)) return;
  if (KNOWN_UNSUPPORTED_TYPES.has(value)) throw invalidRequest(`${name} ${value} is not supported; present an access token or JWT`);
  throw invalidRequest(`${name} is not a known token type URI`);
}

function checkResourceUri(value: string): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalidTarget('resource must be an absolute URI');
  }
  if (url.hash || value.includes('#')) throw invalidTarget('resource must not contain a fragment');
}

/** Strict reading of the RFC 8693 request (plus intent and authorization_details). */
export function parseExchange(params: Params, resourceWasSent: boolean, settings: ExchangeSettings, detailTypes: DetailTypes): ExchangeRequest {
  const subjectToken = single(params, 'subject_token');
  if (subjectToken === undefined) throw invalidRequest('subject_token is required');
  if (subjectToken.length > settings.maxTokenBytes) throw invalidRequest(`subject_token must be at most ${settings.maxTokenBytes} bytes`);
  const subjectTokenType = single(params, 'subject_token_type');
  tokenType(subjectTokenType, 'subject_token_type');

  const actorToken = single(params, 'actor_token');
  const actorTokenType = single(params, 'actor_token_type');
  if ((actorToken === undefined) !== (actorTokenType === undefined)) throw invalidRequest('actor_token and actor_token_type must be sent together');
  if (actorToken !== undefined) {
    if (actorToken.length > settings.maxTokenBytes) throw invalidRequest(`actor_token must be at most ${settings.maxTokenBytes} bytes`);
    tokenType(actorTokenType, 'actor_token_type');
    if (actorTokenType === TT_TASK) throw invalidRequest('actor_token_type may not be a task token: a task token is only ever the subject');
  }

  const requested = single(params, 'requested_token_type') ?? TT_ACCESS_TOKEN;
  if (requested !== TT_ACCESS_TOKEN && requested !== TT_JWT && requested !== TT_TASK) {
    throw invalidRequest('requested_token_type must be the access_token, jwt or task (urn:intentgate:token-type:task) token type');
  }
  // A task token asked for with a task token: the same task, renewed (its ceiling carries over unchanged).
  const renewsTask = requested === TT_TASK && subjectTokenType === TT_TASK;
  const startsTask = requested === TT_TASK && !renewsTask;

  const resources = resourceWasSent ? list(params, 'resource') : [];
  resources.forEach(checkResourceUri);
  const audiences = list(params, 'audience');
  for (const a of audiences) if (a.length > 2000) throw invalidTarget('audience is too long');
  // A task spans its resources (its audience can only be the agent itself, checked once the client is
  // known); every other token has exactly one target.
  if (renewsTask && (resources.length || params.scope !== undefined || params.authorization_details !== undefined)) {
    throw invalidRequest('renewing a task token names no resource, scope or authorization_details: the task\'s carry over');
  }
  const targets = startsTask ? [...new Set(resources)] : renewsTask ? [] : [...new Set([...resources, ...audiences])];
  if (targets.length === 0 && !renewsTask) throw invalidTarget(startsTask ? 'a task names one or more resources' : 'a resource or audience is required');
  if (startsTask && targets.length > 20) throw invalidTarget('a task may name at most 20 resources');
  if (!startsTask && targets.length > 1) throw invalidTarget('exactly one resource or audience is allowed per token (only a task may name several resources)');

  const scopeRaw = single(params, 'scope');
  let scope: string[] | undefined;
  if (scopeRaw !== undefined) {
    if (!/^[\x21\x23-\x5B\x5D-\x7E]+( [\x21\x23-\x5B\x5D-\x7E]+)*$/.test(scopeRaw) || scopeRaw.length > 4000) throw invalidScope('scope is malformed');
    scope = [...new Set(scopeRaw.split(' '))];
  }

  const reviewId = single(params, 'review_id');
  if (reviewId !== undefined && !/^rev_[A-Za-z0-9_-]{1,64}$/.test(reviewId)) throw invalidRequest('review_id is malformed');

  return {
    reviewId,
    subjectToken,
    subjectIsTask: subjectTokenType === TT_TASK,
    actorToken,
    target: targets[0] ?? '',
    resources: targets,
    audiences,
    scope,
    requestedTokenType: requested,
    intent: normalizeIntent(single(params, 'intent'), settings.requireIntent, settings.intentMaxLength),
    details: detailTypes.parse(single(params, 'authorization_details'), settings.maxDetailsBytes),
  };
}
