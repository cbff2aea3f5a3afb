import type { AccessInfo } from './access.ts';
import { ResourceAuthError } from './errors.ts';
import type { ResourceEventReport } from './report.ts';
import type { CallRequirement } from './requirement.ts';
import type { ResourceRequest, ResourceVerifier } from './verifier.ts';

/** What handlers get: the verified token and a way to report what the call did. */
export interface AuthState extends AccessInfo {
  report(event: ResourceEventReport): Promise<number>;
}

export function authState(verifier: ResourceVerifier, access: AccessInfo): AuthState {
  return { ...access, report: (event) => verifier.report(access, event) };
}

// The ledger's own limits on an event's object (src/ledger/events.ts); a report it would refuse is not sent.
const OBJECT_TYPE = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
const ACTION = /^[a-z][a-z0-9_]{0,63}$/;

/** Reports a refusal of a valid token to the ledger; a failed report must not change the answer. */
async function reportDenial(verifier: ResourceVerifier, access: AccessInfo, requirement: CallRequirement): Promise<void> {
  if (!verifier.canReport) return;
  const object: ResourceEventReport['object'] = {};
  if (requirement.objectType && OBJECT_TYPE.test(requirement.objectType)) object.type = requirement.objectType;
  if (requirement.objectId && requirement.objectId.length <= 256) object.id = requirement.objectId;
  // A scope-only requirement names no action; 'access' stands for the request as a whole.
  const action = requirement.action && ACTION.test(requirement.action) ? requirement.action : 'access';
  await verifier.report(access, {
    outcome: 'denied',
    action,
    ...(Object.keys(object).length > 0 ? { object } : {}),
    summary: { error: 'insufficient_scope' },
  }).catch(() => undefined);
}

/** The middlewares' common path: authenticate, and report when a valid token did not cover the call. */
export async function guard(verifier: ResourceVerifier, request: ResourceRequest, requirement: CallRequirement): Promise<AuthState> {
  try {
    return authState(verifier, await verifier.authenticate(request, requirement));
  } catch (err) {
    if (err instanceof ResourceAuthError && err.access) await reportDenial(verifier, err.access, requirement);
    throw err;
  }
}

/**
 * The external URL of a request for DPoP `htu`. With `baseUrl` (the origin clients use, plus any path
 * prefix a proxy strips) the Host header plays no part: it is the client's to set, so a proof made for
 * another server could otherwise be made to match.
 */
export function externalUrl(baseUrl: string | undefined, fallbackOrigin: string, target: string): string {
  // An absolute-form request target (`GET http://host/path`) contributes its path only.
  const absolute = target.startsWith('/') ? undefined : URL.parse(target);
  const path = target.startsWith('/') ? target : absolute ? `${absolute.pathname}${absolute.search}` : '/';
  return `${(baseUrl ?? fallbackOrigin).replace(/\/+$/, '')}${path}`;
}
