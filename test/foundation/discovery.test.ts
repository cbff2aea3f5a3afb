import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.ts';

let t: TestServer;
beforeAll(async () => { t = await startTestServer(); });
afterAll(async () => { await t?.stop(); });

describe('discovery, JWKS and health', () => {
  it.each(['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration'])('%s describes only what can be used', async (p) => {
    const res = await fetch(`${t.url}${p}`);
    expect(res.status).toBe(200);
    const doc = await res.json() as Record<string, unknown>;
    expect(doc.issuer).toBe(t.issuer);
    expect(doc.token_endpoint).toBe(`${t.issuer}/token`);
    expect(doc.jwks_uri).toBe(`${t.issuer}/jwks`);
    expect(doc.grant_types_supported).toEqual(['client_credentials', 'urn:ietf:params:oauth:grant-type:token-exchange']);
    expect(doc.introspection_endpoint).toBe(`${t.issuer}/token/introspection`);
    expect(doc.revocation_endpoint).toBe(`${t.issuer}/token/revocation`);
    expect(doc.authorization_details_types_supported).toEqual(['tool_call']);
    expect(doc.token_endpoint_auth_methods_supported).toEqual(['client_secret_basic', 'client_secret_post', 'private_key_jwt']);
    expect(doc.token_endpoint_auth_signing_alg_values_supported).toContain('ES256');
    // No one can log in, so nothing of the authorization-code flow is advertised.
    for (const absent of ['authorization_endpoint', 'userinfo_endpoint', 'code_challenge_methods_supported', 'registration_endpoint', 'end_session_endpoint']) {
      expect(doc).not.toHaveProperty(absent);
    }
    expect(doc.response_types_supported).toEqual([]);
  });

  it('publishes the signing key as a public JWK set', async () => {
    const res = await fetch(`${t.url}/jwks`);
    expect(res.status).toBe(200);
    const { keys } = await res.json() as { keys: Record<string, unknown>[] };
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    expect(typeof keys[0]!.kid).toBe('string');
    expect(keys[0]).not.toHaveProperty('d');
  });

  it('answers health and readiness', async () => {
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${t.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
  });

  it('answers unknown paths and methods with JSON errors', async () => {
    const nf = await fetch(`${t.url}/authorize`);
    expect(nf.status).toBe(404);
    expect(await nf.json()).toMatchObject({ error: 'not_found' });
    const wrong = await fetch(`${t.url}/jwks`, { method: 'DELETE' });
    expect(wrong.status).toBe(405);
    const getToken = await fetch(`${t.url}/token`);
    expect(getToken.status).toBe(405);
  });

  it('echoes a safe request id and replaces a hostile one', async () => {
    const ok = await fetch(`${t.url}/healthz`, { headers: { 'x-request-id': 'abc-123' } });
    expect(ok.headers.get('x-request-id')).toBe('abc-123');
    const hostile = await fetch(`${t.url}/healthz`, { headers: { 'x-request-id': 'a b"<script>' } });
    expect(hostile.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});
