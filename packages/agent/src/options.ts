import {
  allowInsecureRequests, ClientSecretBasic, discoveryRequest, processDiscoveryResponse,
  type AuthorizationServer, type Client, type ClientAuth,
} from 'oauth4webapi';
import { Configuration } from 'openid-client';
import { AgentInputError } from './errors.ts';
import { Oauth4webapiTransport } from './oauth4webapi_transport.ts';
import { OpenidClientTransport } from './openid_client_transport.ts';
import type { GrantTransport } from './transport.ts';

export interface HttpOptions {
  /**
   * Allow `http://` authorization servers and resources. For development only; default false.
   * (An openid-client Configuration carries its own setting for the authorization server.)
   */
  allowInsecure?: boolean;
}

/** oauth4webapi style: the caller did discovery and chose the client authentication. */
export interface Oauth4webapiOptions {
  as: AuthorizationServer;
  client: Client;
  clientAuth: ClientAuth;
  http?: HttpOptions;
}

/** Convenience: discovery (RFC 8414) with oauth4webapi, client_secret_basic. */
export interface IssuerOptions {
  issuer: string | URL;
  clientId: string;
  clientSecret: string;
  http?: HttpOptions;
}

/** openid-client style: a Configuration from openid-client's `discovery(...)`. */
export interface OpenidClientOptions {
  configuration: Configuration;
  http?: HttpOptions;
}

export type AgentOptions = Oauth4webapiOptions | IssuerOptions | OpenidClientOptions;

export interface ResolvedOptions {
  transport: GrantTransport;
  allowInsecure: boolean;
}

function httpUrl(field: string, value: string | undefined, allowInsecure: boolean): URL {
  const url = value === undefined ? undefined : URL.parse(value);
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) throw new AgentInputError(field, 'must be an http(s) URL');
  if (url.protocol === 'http:' && !allowInsecure) throw new AgentInputError(field, `${url.href} is not https; set http.allowInsecure for development only`);
  return url;
}

/** Validates the options once and builds the one transport their style calls for. */
export async function resolveOptions(options: AgentOptions): Promise<ResolvedOptions> {
  if (typeof options !== 'object' || options === null) throw new AgentInputError('options', 'must be an object');
  const styles = (['as', 'issuer', 'configuration'] as const).filter((k) => k in options && (options as unknown as Record<string, unknown>)[k] !== undefined);
  if (styles.length !== 1) throw new AgentInputError('options', 'pass exactly one of { as, client, clientAuth }, { issuer, clientId, clientSecret } or { configuration }');
  const http = options.http ?? {};
  if (typeof http !== 'object' || http === null || (http.allowInsecure !== undefined && typeof http.allowInsecure !== 'boolean')) throw new AgentInputError('http.allowInsecure', 'must be a boolean');
  const allowInsecure = http.allowInsecure ?? false;

  if ('configuration' in options) {
    if (!(options.configuration instanceof Configuration)) throw new AgentInputError('configuration', "must be an openid-client Configuration (from its discovery())");
    return { transport: new OpenidClientTransport(options.configuration), allowInsecure };
  }
  if ('as' in options) {
    const { as, client, clientAuth } = options;
    if (typeof as !== 'object' || as === null || typeof as.issuer !== 'string') throw new AgentInputError('as', 'must be oauth4webapi AuthorizationServer metadata');
    httpUrl('as.token_endpoint', as.token_endpoint, allowInsecure);
    if (typeof client !== 'object' || client === null || typeof client.client_id !== 'string' || client.client_id === '') throw new AgentInputError('client', 'must be an oauth4webapi Client with a client_id');
    if (typeof clientAuth !== 'function') throw new AgentInputError('clientAuth', 'must be an oauth4webapi ClientAuth, e.g. ClientSecretBasic(secret)');
    return { transport: new Oauth4webapiTransport(as, client, clientAuth, allowInsecure), allowInsecure };
  }
  const { issuer, clientId, clientSecret } = options;
  const issuerUrl = httpUrl('issuer', issuer instanceof URL ? issuer.href : issuer, allowInsecure);
  if (typeof clientId !== 'string' || clientId === '') throw new AgentInputError('clientId', 'must be a non-empty string');
  if (typeof clientSecret !== 'string' || clientSecret === '') throw new AgentInputError('clientSecret', 'must be a non-empty string');
  // RFC 8414 metadata; processDiscoveryResponse checks that it names this very issuer.
  const as = await processDiscoveryResponse(issuerUrl, await discoveryRequest(issuerUrl, { algorithm: 'oauth2', [allowInsecureRequests]: allowInsecure }));
  httpUrl('token_endpoint (discovered)', as.token_endpoint, allowInsecure);
  return { transport: new Oauth4webapiTransport(as, { client_id: clientId }, ClientSecretBasic(clientSecret), allowInsecure), allowInsecure };
}
