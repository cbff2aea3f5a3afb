export { GRANT_TOKEN_EXCHANGE_TYPE as GRANT_TOKEN_EXCHANGE } from '../registry/clients.ts';
export const TT_ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
export const TT_JWT = 'urn:ietf:params:oauth:token-type:jwt';
/** A task token (README, Tasks): asked for to start a task, presented to draw tool-call tokens from it. */
export const TT_TASK = 'urn:intentgate:token-type:task';

/** Token types intentgate accepts as subject or actor: a JWT we can validate (a task token only as the subject). */
export const ACCEPTED_INPUT_TYPES = new Set([TT_ACCESS_TOKEN, TT_JWT, TT_TASK]);
/** RFC 8693 §3 types that exist but that intentgate does not take. */
export const KNOWN_UNSUPPORTED_TYPES = new Set([
  'urn:ietf:params:oauth:token-type:refresh_token',
  'urn:ietf:params:oauth:token-type:id_token',
  'urn:ietf:params:oauth:token-type:saml1',
  'urn:ietf:params:oauth:token-type:saml2',
]);
