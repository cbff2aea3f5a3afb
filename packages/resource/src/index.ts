// intentgate/resource: verify intentgate tokens in a resource server. The MCP adapter is intentgate/resource/mcp.
export type { AccessInfo, Actor, AuthorizationDetail } from './access.ts';
export { accessFrom, type ResourceAuthExtra, type ResourceAuthInfo } from './auth_info.ts';
export { MAX_TOKEN_LENGTH } from './authorization.ts';
export type { ClientCredentials } from './client_auth.ts';
export { ResourceAuthError, type AuthScheme, type ResourceErrorCode, type ResourceErrorStatus } from './errors.ts';
export type { AuthState } from './guard.ts';
export {
  metadataUrl, protectedResourceMetadata, protectedResourceMetadataHandler,
  type ProtectedResourceMetadata, type ProtectedResourceMetadataOptions,
} from './metadata.ts';
export { nodeAuth, type NodeAuthHandler, type NodeAuthOptions, type NodeAuthRequirement } from './node.ts';
export { ResourceReportError, type ResourceEventReport } from './report.ts';
export { callDenial, checkCall, matchedDetail, type CallDenial, type CallRequirement } from './requirement.ts';
export { createResourceVerifier, type ResourceRequest, type ResourceVerifier, type ResourceVerifierOptions } from './verifier.ts';
