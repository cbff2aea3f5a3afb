import type { Actor, AuthorizationDetail } from './access.ts';
import type { AuthState } from './guard.ts';

// A type alias, not an interface, so it is assignable to the MCP SDK's `extra: Record<string, unknown>`.
export type ResourceAuthExtra = {
  sub: string;
  /** The user as (issuer, sub): see AccessInfo.user. */
  user: { iss: string; sub: string } | undefined;
  act: Actor | undefined;
  task: string | undefined;
  authorization_details: AuthorizationDetail[];
  jti: string;
  token_type: 'Bearer' | 'DPoP';
  access: AuthState;
};

/**
 * The shape of the MCP SDK's `AuthInfo` (declared here so Koa and Express users need not install the
 * SDK): what `req.auth` holds, and what the SDK hands tool handlers as `extra.authInfo`.
 */
export type ResourceAuthInfo = {
  token: string;
  clientId: string;
  scopes: string[];
  expiresAt: number;
  resource: URL;
  extra: ResourceAuthExtra;
};

export function toAuthInfo(state: AuthState, resource: string): ResourceAuthInfo {
  return {
    token: state.token,
    clientId: state.clientId,
    scopes: state.scopes,
    expiresAt: state.expiresAt,
    // The audience that matched this resource server, so the SDK's expectedResource check holds.
    resource: new URL(state.audience.find((a) => a === resource) ?? resource),
    extra: {
      sub: state.sub,
      user: state.user,
      act: state.act,
      task: state.task,
      authorization_details: state.authorizationDetails,
      jti: state.jti,
      token_type: state.tokenType,
      access: state,
    },
  };
}

/**
 * The AuthState behind an AuthInfo set by nodeAuth or mcpTokenVerifier (`req.auth`, or an MCP tool's
 * `extra.authInfo`), for checkCall and report. Throws when there is none: the route is not guarded.
 */
export function accessFrom(authInfo: { extra?: Record<string, unknown> } | undefined): AuthState {
  const access = authInfo?.extra?.access as AuthState | undefined;
  if (!access || typeof access.report !== 'function' || typeof access.jti !== 'string') {
    throw new TypeError('no intentgate access on this request: is it behind nodeAuth or mcpTokenVerifier?');
  }
  return access;
}
