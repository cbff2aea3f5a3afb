import { DPOP_ALGS } from './protocol/dpop_proof.ts';
import type { AccessInfo, AuthorizationDetail } from './access.ts';
import { challenge, ResourceAuthError, type ChallengeContext } from './errors.ts';

/** What a call needs from the token. Every listed scope is required. */
export interface CallRequirement {
  scope?: string | string[];
  /** An `authorization_details` entry must name this action … */
  action?: string;
  /** … and, when given, this object type … */
  objectType?: string;
  /** … and this object id. */
  objectId?: string;
  /** Introspect now, whatever the cache holds (a payment, a deletion). */
  sensitive?: boolean;
}

/** Why the token does not cover the call; the verifier turns it into 403 insufficient_scope. */
export interface CallDenial {
  description: string;
  /** The scopes the call requires, for the challenge's `scope` parameter. */
  scope: string[];
}

export function requiredScopes(requirement: CallRequirement): string[] {
  const { scope } = requirement;
  if (scope === undefined) return [];
  return (Array.isArray(scope) ? scope : [scope]).flatMap((s) => s.split(' ')).filter(Boolean);
}

function describeCall({ action, objectType, objectId }: CallRequirement): string {
  const object = [objectType, objectId].filter((v) => v !== undefined).join(' ');
  return object ? `${action} on ${object}` : `${action}`;
}

/** A requirement that no token could ever meet is a programming error: a TypeError, never a refusal. */
export function assertRequirementShape(requirement: CallRequirement): void {
  const { action, objectType, objectId } = requirement;
  if (action === undefined && (objectType !== undefined || objectId !== undefined)) throw new TypeError('a requirement naming an object must name the action too');
}

/**
 * The authorization detail that covers the call: same action, and same object type and id where the
 * call names them; the first one when several do. Undefined when none does, or the call names no action.
 * Scopes are not looked at: callDenial and checkCall check both.
 */
export function matchedDetail(access: AccessInfo, requirement: CallRequirement): AuthorizationDetail | undefined {
  assertRequirementShape(requirement);
  const { action, objectType, objectId } = requirement;
  if (action === undefined) return undefined;
  return access.authorizationDetails.find((d) => d.action === action
    && (objectType === undefined || d.object?.type === objectType)
    && (objectId === undefined || d.object?.id === objectId));
}

/**
 * Whether a token covers a call: its scopes and, when the call names an action, one of its
 * authorization details (matchedDetail). The single matching rule for middleware and MCP tool
 * handlers alike. Undefined means allowed.
 */
export function callDenial(access: AccessInfo, requirement: CallRequirement): CallDenial | undefined {
  assertRequirementShape(requirement);
  const scope = requiredScopes(requirement);
  const missing = scope.filter((s) => !access.scopes.includes(s));
  if (missing.length > 0) return { description: `token lacks scope ${missing.join(' ')}`, scope };
  if (requirement.action === undefined || matchedDetail(access, requirement)) return undefined;
  const none = access.authorizationDetails.length === 0;
  return { description: `${none ? 'token carries no authorization_details for' : 'token authorization_details do not cover'} ${describeCall(requirement)}`, scope };
}

/**
 * callDenial as a refusal: throws 403 insufficient_scope (RFC 6750 §3.1) with the challenge for the
 * scheme the token was presented with; `access` rides on the error so the refusal can be reported.
 * Answers the authorization detail that covers the call (undefined when the call names no action), so
 * a handler need not match the details again (e.g. to compare an amount the token was granted for).
 */
export function checkCall(access: AccessInfo, requirement: CallRequirement, context: ChallengeContext = { dpopAlgs: DPOP_ALGS }): AuthorizationDetail | undefined {
  const denial = callDenial(access, requirement);
  if (!denial) return matchedDetail(access, requirement);
  const params = { error: 'insufficient_scope' as const, description: denial.description, scope: denial.scope };
  throw new ResourceAuthError(403, 'insufficient_scope', denial.description, { wwwAuthenticate: challenge([access.tokenType], params, context), access });
}
