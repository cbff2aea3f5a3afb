import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DPOP_ALGS } from '../../packages/resource/src/protocol/dpop_proof.ts';
import { createResourceVerifier, metadataUrl, protectedResourceMetadata, protectedResourceMetadataHandler } from '@intentgate/resource';
import { EXPENSES, startWorld, type World } from '../helpers/world.ts';
import { serve, type Served } from './helpers.ts';

let w: World;
let app: Served;

beforeAll(async () => {
  w = await startWorld();
  const doc = protectedResourceMetadata({ resource: EXPENSES, authorizationServers: [w.t.issuer], scopesSupported: ['expenses:read'], resourceName: 'Expenses', dpopBound: false });
  const handler = protectedResourceMetadataHandler(doc);
  app = await serve((req, res) => {
    if (req.url === '/.well-known/oauth-protected-resource') return handler(req, res);
    res.writeHead(404).end();
  });
});
afterAll(async () => {
  await app?.close();
  await w?.t.stop();
});

describe('RFC 9728 protected resource metadata', () => {
  it('computes the well-known URL between host and path (§3.1)', () => {
    expect(metadataUrl('https://expenses.example')).toBe('https://expenses.example/.well-known/oauth-protected-resource');
    expect(metadataUrl('https://expenses.example/')).toBe('https://expenses.example/.well-known/oauth-protected-resource');
    // Any terminating slash of the path is removed.
    expect(metadataUrl('https://api.example/mcp/')).toBe('https://api.example/.well-known/oauth-protected-resource/mcp');
    expect(metadataUrl('https://api.example/v1/mcp//?tenant=a')).toBe('https://api.example/.well-known/oauth-protected-resource/v1/mcp?tenant=a');
    expect(metadataUrl('https://api.example:8443/mcp')).toBe('https://api.example:8443/.well-known/oauth-protected-resource/mcp');
    expect(metadataUrl('https://api.example/v1/mcp?tenant=a')).toBe('https://api.example/.well-known/oauth-protected-resource/v1/mcp?tenant=a');
    expect(() => metadataUrl('https://api.example/mcp#frag')).toThrow(TypeError);
    expect(() => metadataUrl('not a url')).toThrow(TypeError);
  });

  it('describes the resource, header-only bearer use and the DPoP algorithms', () => {
    expect(protectedResourceMetadata({ resource: EXPENSES, authorizationServers: ['https://ig.example'], dpopBound: true })).toEqual({
      resource: EXPENSES,
      authorization_servers: ['https://ig.example'],
      bearer_methods_supported: ['header'],
      dpop_signing_alg_values_supported: [...DPOP_ALGS],
      dpop_bound_access_tokens_required: true,
    });
    expect(() => protectedResourceMetadata({ resource: EXPENSES, authorizationServers: [] })).toThrow(TypeError);
  });

  it('takes resource, issuer and dpop_bound_access_tokens_required from the verifier, so they cannot disagree', () => {
    const strict = createResourceVerifier({ issuer: w.t.issuer, resource: EXPENSES, introspection: false, requireDpop: true });
    expect(protectedResourceMetadata({ verifier: strict, scopesSupported: ['expenses:read'] })).toEqual({
      resource: EXPENSES,
      authorization_servers: [w.t.issuer],
      bearer_methods_supported: ['header'],
      scopes_supported: ['expenses:read'],
      dpop_signing_alg_values_supported: [...DPOP_ALGS],
      dpop_bound_access_tokens_required: true,
    });
    const lax = createResourceVerifier({ issuer: w.t.issuer, resource: EXPENSES, introspection: false });
    expect(protectedResourceMetadata({ verifier: lax }).dpop_bound_access_tokens_required).toBe(false);
    // Saying it a second time is refused, whether or not it agrees.
    expect(() => protectedResourceMetadata({ verifier: lax, dpopBound: true } as never)).toThrow(TypeError);
    expect(() => protectedResourceMetadata({ verifier: lax, resource: EXPENSES } as never)).toThrow(TypeError);
  });

  it('is served to GET as cacheable JSON naming a live authorization server', async () => {
    const res = await fetch(`${app.url}/.well-known/oauth-protected-resource`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('cache-control')).toMatch(/max-age=\d+/);
    const doc = await res.json() as { resource: string; authorization_servers: string[]; scopes_supported: string[]; resource_name: string; dpop_bound_access_tokens_required: boolean };
    expect(doc).toMatchObject({ resource: EXPENSES, scopes_supported: ['expenses:read'], resource_name: 'Expenses', dpop_bound_access_tokens_required: false });
    const as = await fetch(`${doc.authorization_servers[0]}/.well-known/oauth-authorization-server`);
    expect(((await as.json()) as { issuer: string }).issuer).toBe(w.t.issuer);
  });

  it('answers 405 to other methods', async () => {
    const res = await fetch(`${app.url}/.well-known/oauth-protected-resource`, { method: 'POST', body: '{}' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, HEAD');
  });
});
