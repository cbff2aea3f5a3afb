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

/** A static requirement is checked when the middleware is built, so a misconfiguration fails at startup. */
export function assertStatic(verifier: ResourceVerifier, requirement: CallRequirement | ((...args: never[]) => unknown)): void {
  if (typeof requirement !== 'function') verifier.assertRequirement(requirement);
}

/**
 * The middlewares' common path: authenticate, and when a valid token did not cover the call, report the
 * refusal in the background (the answer does not wait for the ledger, nor depend on it).
 */
export async function guard(verifier: ResourceVerifier, request: ResourceRequest, requirement: CallRequirement): Promise<AuthState> {
  try {
    return authState(verifier, await verifier.authenticate(request, requirement));
  } catch (err) {
    if (err instanceof ResourceAuthError && err.access) verifier.reportDenial(err.access, requirement);
    throw err;
  }
}
