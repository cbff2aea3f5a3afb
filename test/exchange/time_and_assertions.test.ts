import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createResourceVerifier, ResourceAuthError } from '@intentgate/resource';
import { holder, proof } from '../helpers/dpop.ts';
import { basicAuth, serve, type Served } from '../helpers/server.ts';
import { ACCESS_TOKEN_TYPE, EXPENSES, exchangeParams, startWorld, TOKEN_EXCHANGE, type World } from '../helpers/world.ts';

// Issue #10 items 2 and 3: private_key_jwt assertions hold to exact audience, time and lifetime rules on
// every endpoint that authenticates clients, and every time check has the same exclusive skew boundary.

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
let w: World;
let key: CryptoKey;
let jwk: JWK;
let skew: number;
let maxLifetime: number;

beforeAll(async () => {
  w = await startWorld({ rate_limits: { token: { burst: 100_000, per_second: 100_000 } } });
  skew = w.t.config.exchange.clockSkew;
  maxLifetime = w.t.config.exchange.clientAssertionMaxLifetime;
  const pair = await generateKeyPair('ES256');
  key = pair.privateKey;
  jwk = { ...(await exportJWK(pair.publicKey)), kid: 'pk-1', alg: 'ES256', use: 'sig' };
  for (const c of [
    { client_id: 'pk-svc', grant_types: ['client_credentials'], scope: 'expenses:read' },
    { client_id: 'pk-agent', grant_types: [TOKEN_EXCHANGE], scope: 'expenses:read' },
    { client_id: 'pk-rs', resource_server: EXPENSES },
  ]) {
    const res = await w.t.admin('POST', '/admin/api/clients', { ...c, token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [jwk] } });
    expect(res.status, await res.clone().text()).toBe(201);
  }
});
afterAll(async () => { await w?.t.stop(); });

const nowSec = () => Math.floor(Date.now() / 1000);

/**
 * Runs `fn` with Date frozen half-way through a whole second (`now`), in this process, which is also
 * the server's: a claim set at now ± skew sits exactly on the boundary, whatever the machine's speed.
 */
async function frozen<T>(fn: (now: number) => Promise<T>): Promise<T> {
  const now = nowSec() + 1;
  vi.useFakeTimers({ toFake: ['Date'], now: now * 1000 + 500 });
  try {
    return await fn(now);
  } finally {
    vi.useRealTimers();
  }
}

/** A client assertion signed by the client's registered key; any claim can be overridden or dropped (undefined). */
function assertion(clientId: string, claims: Record<string, unknown> = {}, signWith = key): Promise<string> {
  const now = nowSec();
  return new SignJWT({ iss: clientId, sub: clientId, aud: w.t.issuer, jti: randomBytes(12).toString('base64url'), iat: now, exp: now + 60, ...claims })
    .setProtectedHeader({ alg: 'ES256', kid: 'pk-1' })
    .sign(signWith);
}

function post(path: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${w.t.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(form) });
}

const withAssertion = (a: string) => ({ client_assertion_type: JWT_BEARER, client_assertion: a });
const clientCredentials = (a: string) => post('/token', { grant_type: 'client_credentials', resource: EXPENSES, scope: 'expenses:read', ...withAssertion(a) });
const introspection = (a: string, token = 'x') => post('/token/introspection', { token, ...withAssertion(a) });
const revocation = (a: string, token = 'x') => post('/token/revocation', { token, ...withAssertion(a) });

async function expectInvalidClient(res: Response, description?: RegExp): Promise<void> {
  const body = await res.json() as { error: string; error_description: string };
  expect(res.status, JSON.stringify(body)).toBe(401);
  expect(body.error).toBe('invalid_client');
  if (description) expect(body.error_description).toMatch(description);
  expect(res.headers.get('www-authenticate')).toMatch(/^Basic realm="/);
}

async function expectOk(res: Response): Promise<void> {
  expect(res.status, await res.clone().text()).toBe(200);
}

describe('private_key_jwt: audience', () => {
  it('accepts exactly the issuer or the token endpoint, as a string or a one-element array', async () => {
    for (const aud of [w.t.issuer, `${w.t.issuer}/token`, [w.t.issuer], [`${w.t.issuer}/token`]]) {
      await expectOk(await clientCredentials(await assertion('pk-svc', { aud })));
    }
  });

  it('refuses any other audience on /token: extra entries, two of ours, a trailing slash, another endpoint, another server', async () => {
    const evil = 'https://evil.example';
    // Lists that contain one of ours, and the endpoint's own URL, got past oidc-provider's check.
    for (const aud of [[w.t.issuer, evil], [evil, w.t.issuer], [w.t.issuer, w.t.issuer], [w.t.issuer, `${w.t.issuer}/token`]]) {
      await expectInvalidClient(await clientCredentials(await assertion('pk-svc', { aud })), /aud must be exactly/);
    }
    for (const aud of [[], `${w.t.issuer}/`, `${w.t.issuer}/token/`, `${w.t.issuer}/token/introspection`, evil, w.t.issuer.toUpperCase()]) {
      await expectInvalidClient(await clientCredentials(await assertion('pk-svc', { aud })));
    }
  });

  it('refuses an injected audience at introspection and revocation too (where the endpoint URL is not an audience either)', async () => {
    await expectOk(await introspection(await assertion('pk-rs')));
    await expectOk(await revocation(await assertion('pk-rs', { aud: `${w.t.issuer}/token` })));
    for (const [send, path] of [[introspection, '/token/introspection'], [revocation, '/token/revocation']] as const) {
      await expectInvalidClient(await send(await assertion('pk-rs', { aud: [w.t.issuer, 'https://evil.example'] })), /aud must be exactly/);
      // oidc-provider takes the endpoint's own URL as an audience; intentgate does not.
      await expectInvalidClient(await send(await assertion('pk-rs', { aud: `${w.t.issuer}${path}` })), /aud must be exactly/);
    }
  });

  it('does not take the token endpoint from the request\'s Host header', async () => {
    const a = await assertion('pk-svc', { aud: 'http://evil.example/token' });
    const body = new URLSearchParams({ grant_type: 'client_credentials', resource: EXPENSES, ...withAssertion(a) }).toString();
    const { status, headers } = await new Promise<{ status: number; headers: http.IncomingHttpHeaders }>((resolve, reject) => {
      const req = http.request(`${w.t.url}/token`, { method: 'POST', headers: { host: 'evil.example', 'content-type': 'application/x-www-form-urlencoded' } }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers }));
      });
      req.on('error', reject);
      req.end(body);
    });
    expect(status).toBe(401);
    expect(headers['www-authenticate']).toMatch(/^Basic realm="/);
  });
});

describe('private_key_jwt: time and lifetime', () => {
  it('refuses iat or nbf at or beyond the clock skew ahead, and accepts them one second inside it', async () => {
    await frozen(async (now) => {
      for (const claims of [{ iat: now + skew }, { iat: now + skew + 30, exp: now + skew + 90 }, { nbf: now + skew }]) {
        await expectInvalidClient(await clientCredentials(await assertion('pk-svc', claims)), /issued in the future|not yet valid/);
      }
      // oidc-provider itself refuses an nbf beyond the boundary, without saying why.
      await expectInvalidClient(await clientCredentials(await assertion('pk-svc', { nbf: now + skew + 1 })));
      await expectOk(await clientCredentials(await assertion('pk-svc', { iat: now + skew - 1 })));
      await expectOk(await clientCredentials(await assertion('pk-svc', { nbf: now + skew - 1 })));
    });
  });

  it('refuses an assertion whose exp is the clock skew in the past, and accepts one a second later', async () => {
    await frozen(async (now) => {
      await expectInvalidClient(await clientCredentials(await assertion('pk-svc', { iat: now - skew - 10, exp: now - skew })));
      await expectOk(await clientCredentials(await assertion('pk-svc', { iat: now - skew - 10, exp: now - skew + 1 })));
    });
  });

  it(`caps the lifetime: exp - iat, and how far exp reaches ahead of the server's clock`, async () => {
    await frozen(async (now) => {
      await expectInvalidClient(await clientCredentials(await assertion('pk-svc', { iat: now, exp: now + maxLifetime + 1 })), /lifetime must not exceed/);
      await expectInvalidClient(await clientCredentials(await assertion('pk-svc', { iat: now - 3600, exp: now + 10 })), /lifetime must not exceed/);
      await expectOk(await clientCredentials(await assertion('pk-svc', { iat: now, exp: now + maxLifetime })));
      // Without iat, exp itself is bounded: at most the lifetime (plus the skew, exclusive) ahead.
      await expectInvalidClient(await clientCredentials(await assertion('pk-svc', { iat: undefined, exp: now + maxLifetime + skew })), /lifetime must not exceed/);
      await expectInvalidClient(await clientCredentials(await assertion('pk-svc', { iat: undefined, exp: now + 86_400 })), /lifetime must not exceed/);
      await expectOk(await clientCredentials(await assertion('pk-svc', { iat: undefined, exp: now + maxLifetime + skew - 1 })));
    });
  });

  it('requires sub to be the client itself (oidc-provider reads the client from it)', async () => {
    for (const sub of [undefined, 'pk-rs', '']) await expectInvalidClient(await clientCredentials(await assertion('pk-svc', { sub })));
  });

  it('requires exp, a numeric one', async () => {
    await expectInvalidClient(await clientCredentials(await assertion('pk-svc', { exp: undefined })));
    await expectInvalidClient(await clientCredentials(await assertion('pk-svc', { exp: String(nowSec() + 60) })));
  });

  it('applies the same rules at introspection and revocation', async () => {
    await frozen(async (now) => {
      for (const send of [introspection, revocation]) {
        await expectInvalidClient(await send(await assertion('pk-rs', { iat: now + skew })), /issued in the future/);
        await expectInvalidClient(await send(await assertion('pk-rs', { nbf: now + skew })), /not yet valid/);
        await expectInvalidClient(await send(await assertion('pk-rs', { iat: now, exp: now + maxLifetime + 1 })), /lifetime/);
      }
    });
  });
});

describe('private_key_jwt: replay', () => {
  it('accepts an assertion once, across endpoints', async () => {
    const a = await assertion('pk-rs');
    await expectOk(await introspection(a));
    await expectInvalidClient(await introspection(a), /used before/);
    await expectInvalidClient(await revocation(a), /used before/);
    await expectInvalidClient(await post('/token', { grant_type: 'client_credentials', resource: EXPENSES, ...withAssertion(a) }), /used before/);
  });

  it('accepts an assertion once even when it is sent many times at once', async () => {
    const a = await assertion('pk-svc');
    const answers = await Promise.all(Array.from({ length: 8 }, () => clientCredentials(a)));
    expect(answers.map((r) => r.status).sort()).toEqual([200, 401, 401, 401, 401, 401, 401, 401]);
  });

  it('keeps replay records per client: the same jti from two clients is two assertions', async () => {
    const jti = randomBytes(12).toString('base64url');
    await expectOk(await clientCredentials(await assertion('pk-svc', { jti })));
    await expectOk(await introspection(await assertion('pk-rs', { jti })));
  });
});

describe('the clock skew boundary is exclusive everywhere', () => {
  const present = (token: string) => w.exchange('agent', exchangeParams(token));

  it('subject tokens: nbf and iat at now + skew are refused, one second earlier accepted; exp at now - skew refused', async () => {
    await frozen(async (now) => {
      for (const [claims, message] of [
        [{ nbf: now + skew }, /not yet valid/], [{ iat: now + skew }, /issued in the future/], [{ iat: now - 7200, exp: now - skew }, /expired/],
      ] as const) {
        const res = await present(await w.userToken(claims));
        const body = await res.json() as { error: string; error_description: string };
        expect(res.status, JSON.stringify(claims)).toBe(400);
        expect(body).toMatchObject({ error: 'invalid_request' });
        expect(body.error_description).toMatch(message);
      }
      expect((await present(await w.userToken({ nbf: now + skew - 1 }))).status).toBe(200);
      expect((await present(await w.userToken({ iat: now + skew - 1 }))).status).toBe(200);
    });
  });

  it('client-signed actor tokens: nbf and iat at now + skew are refused, one second earlier accepted', async () => {
    const actor = (claims: Record<string, unknown>, now: number) => new SignJWT({ iss: 'pk-agent', sub: 'pk-agent', aud: w.t.issuer, iat: now, exp: now + 60, ...claims })
      .setProtectedHeader({ alg: 'ES256', kid: 'pk-1' }).sign(key);
    await frozen(async (now) => {
      const exchange = async (claims: Record<string, unknown>) => post('/token', {
        grant_type: TOKEN_EXCHANGE, ...exchangeParams(await w.userToken()) as Record<string, string>,
        actor_token: await actor(claims, now), actor_token_type: ACCESS_TOKEN_TYPE, ...withAssertion(await assertion('pk-agent')),
      });
      for (const claims of [{ nbf: now + skew }, { iat: now + skew }, { iat: now - 600, exp: now - skew }]) {
        const res = await exchange(claims);
        expect(res.status, JSON.stringify(claims)).toBe(400);
        expect(await res.json()).toMatchObject({ error: 'invalid_request', error_description: expect.stringMatching(/^actor_token /) });
      }
      await expectOk(await exchange({ nbf: now + skew - 1, iat: now + skew - 1 }));
    });
  });

  it('DPoP proofs at the token endpoint: iat at now + skew is refused, one second earlier accepted', async () => {
    const h = await holder();
    const exchangeWithProof = async (dpop: string) => fetch(`${w.t.url}/token`, {
      method: 'POST',
      headers: { authorization: basicAuth(...w.creds.agent!), 'content-type': 'application/x-www-form-urlencoded', dpop },
      body: new URLSearchParams({ grant_type: TOKEN_EXCHANGE, ...exchangeParams(await w.userToken()) as Record<string, string> }),
    });
    await frozen(async (now) => {
      const ahead = await exchangeWithProof(await proof(h, `${w.t.url}/token`, { iat: now + skew }));
      expect(ahead.status).toBe(400);
      expect(await ahead.json()).toMatchObject({ error: 'invalid_dpop_proof', error_description: 'DPoP proof was issued in the future' });
      await expectOk(await exchangeWithProof(await proof(h, `${w.t.url}/token`, { iat: now + skew - 1 })));
      // Too old: an age limit of maxAge is an exp of iat + maxAge, under the same rule.
      const maxAge = w.t.config.exchange.dpopProofMaxAge;
      const old = await exchangeWithProof(await proof(h, `${w.t.url}/token`, { iat: now - maxAge - skew }));
      expect(await old.json()).toMatchObject({ error: 'invalid_dpop_proof', error_description: expect.stringMatching(/older than/) });
      await expectOk(await exchangeWithProof(await proof(h, `${w.t.url}/token`, { iat: now - maxAge - skew + 1 })));
    });
  });

  describe('the resource middleware', () => {
    const ISSUER = 'https://as.test';
    let jwks: Served;
    let signer: CryptoKey;
    beforeAll(async () => {
      const pair = await generateKeyPair('ES256');
      signer = pair.privateKey;
      const pub = { ...(await exportJWK(pair.publicKey)), kid: 'rs-1', alg: 'ES256' };
      jwks = await serve((_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [pub] })); });
    });
    afterAll(async () => { await jwks?.close(); });

    it('refuses an access token with nbf or iat at now + tolerance, or exp at now - tolerance; accepts one second inside', async () => {
      const tolerance = 5;
      const v = createResourceVerifier({ issuer: ISSUER, resource: EXPENSES, introspection: false, jwksUri: `${jwks.url}/jwks`, clockTolerance: tolerance });
      const token = (claims: Record<string, unknown>, now: number) => new SignJWT({
        iss: ISSUER, aud: EXPENSES, sub: 'alice', client_id: 'agent', jti: randomBytes(8).toString('hex'), scope: 'expenses:read', iat: now, exp: now + 60, ...claims,
      }).setProtectedHeader({ alg: 'ES256', kid: 'rs-1', typ: 'at+jwt' }).sign(signer);
      const call = async (claims: Record<string, unknown>, now: number) => v.authenticate({ method: 'GET', url: `${EXPENSES}/x`, authorization: `Bearer ${await token(claims, now)}` });
      await frozen(async (now) => {
        for (const [claims, message] of [
          [{ nbf: now + tolerance }, /not yet valid/], [{ iat: now + tolerance }, /issued in the future/], [{ iat: now - 600, exp: now - tolerance }, /expired/],
        ] as const) {
          const err = await call(claims, now).then(() => undefined, (e: unknown) => e);
          expect(err, JSON.stringify(claims)).toBeInstanceOf(ResourceAuthError);
          expect((err as ResourceAuthError).message).toMatch(message);
        }
        await expect(call({ nbf: now + tolerance - 1, iat: now + tolerance - 1 }, now)).resolves.toMatchObject({ sub: 'alice' });
        await expect(call({ iat: now - 600, exp: now - tolerance + 1 }, now)).resolves.toMatchObject({ sub: 'alice' });
      });
    });

    it('with no tolerance at all, still accepts a token from this very second (RFC 7519: valid from nbf, until exp)', async () => {
      const v = createResourceVerifier({ issuer: ISSUER, resource: EXPENSES, introspection: false, jwksUri: `${jwks.url}/jwks`, clockTolerance: 0 });
      const call = async (claims: Record<string, unknown>) => v.authenticate({ method: 'GET', url: `${EXPENSES}/x`, authorization: `Bearer ${await new SignJWT({
        iss: ISSUER, aud: EXPENSES, sub: 'alice', client_id: 'agent', jti: randomBytes(8).toString('hex'), ...claims,
      }).setProtectedHeader({ alg: 'ES256', kid: 'rs-1', typ: 'at+jwt' }).sign(signer)}` });
      await frozen(async (now) => {
        await expect(call({ iat: now, nbf: now, exp: now + 1 })).resolves.toMatchObject({ sub: 'alice' });
        await expect(call({ iat: now + 1, exp: now + 60 })).rejects.toThrow(/issued in the future/);
        await expect(call({ nbf: now + 1, iat: now, exp: now + 60 })).rejects.toThrow(/not yet valid|nbf/);
        await expect(call({ iat: now - 60, exp: now })).rejects.toThrow(/expired/);
      });
    });
  });
});
