// The peer `npm run bench` compares intentgate with: a plain oidc-provider 9 (the engine intentgate is
// built on), issuing RFC 9068 client_credentials access tokens signed with ES256, with no database
// (oidc-provider's in-memory adapter; a JWT access token is not stored). It does the least a token
// endpoint can: authenticate the client (HTTP Basic), check the resource and scope, sign. Run in its
// own process by bench/run.ts, which reads its URL and client from the first IPC message.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { errors } from 'oidc-provider';
import { serveParent } from './child.ts';

const RESOURCE = 'https://expenses.example';
const clientId = 'peer-batch';
const clientSecret = randomBytes(32).toString('base64url');
const { privateKey } = await generateKeyPair('ES256', { extractable: true });
const key = { ...(await exportJWK(privateKey)), kid: 'peer-1', alg: 'ES256', use: 'sig' };

const server = http.createServer();
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

const provider = new Provider(issuer, {
  clients: [{ client_id: clientId, client_secret: clientSecret, grant_types: ['client_credentials'], response_types: [], redirect_uris: [], scope: 'expenses:read', id_token_signed_response_alg: 'ES256' }],
  jwks: { keys: [key] } as never,
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  responseTypes: ['none'],
  scopes: ['expenses:read'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => { throw new errors.InvalidTarget('the resource parameter is required'); },
      useGrantedResource: () => false,
      getResourceServerInfo: (_ctx, indicator) => {
        if (indicator !== RESOURCE) throw new errors.InvalidTarget();
        return { audience: RESOURCE, scope: 'expenses:read', accessTokenTTL: 300, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } };
      },
    },
  },
});
server.on('request', provider.callback());
serveParent({}, () => new Promise<void>((r) => server.close(() => r())));
process.send!({ ready: { url: issuer, client: [clientId, clientSecret] } });
