import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import {
  CompactEncrypt, decodeJwt, exportJWK, exportSPKI, generateKeyPair, importJWK, SignJWT, type CryptoKey, type JWK, type JWTPayload,
} from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXPENSES, exchangeParams, IDP, startWorld, type World } from '../helpers/world.ts';

// Subject-token validation (RFC 8693 §2.1, RFC 8725, RFC 9068): every refusal is 400 invalid_request
// with a description that says what is wrong, and never a token.

const RSA_IDP = 'https://idp-rsa.test';
const SCP_IDP = 'https://idp-scp.test';

let w: World;
let attacker: { publicKey: CryptoKey; privateKey: CryptoKey };
let rsa: { publicKey: CryptoKey; privateKey: CryptoKey };
let scpKey: CryptoKey;
let idpPublicJwk: JWK;
/** A server holding an attacker's JWKS: a jku/x5u header must never make intentgate fetch from it. */
let attackerJwks: Server;
let attackerJwksUrl: string;
let attackerJwksHits = 0;

const now = () => Math.floor(Date.now() / 1000);
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

function baseClaims(extra: JWTPayload = {}): JWTPayload {
  return {
    iss: IDP, sub: 'alice', aud: 'intentgate', iat: now(), exp: now() + 3600, jti: randomBytes(8).toString('hex'),
    scope: 'expenses:read expenses:submit expenses:approve hr:read reports:read', ...extra,
  };
}

/** Signs any claims with any header and key (claims set to undefined are dropped by JSON). */
function sign(claims: JWTPayload, header: Record<string, unknown>, key: CryptoKey | Uint8Array): Promise<string> {
  return new SignJWT(claims).setProtectedHeader(header as { alg: string }).sign(key);
}

/** A compact ES256 JWS built without jose's header checks (WebCrypto's ECDSA output is already r || s). */
async function signRaw(header: Record<string, unknown>, claims: JWTPayload, key: CryptoKey): Promise<string> {
  const input = `${b64(header)}.${b64(claims)}`;
  const sig = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, key, new TextEncoder().encode(input));
  return `${input}.${Buffer.from(sig).toString('base64url')}`;
}

async function mustCreate(res: Promise<Response>): Promise<void> {
  const r = await res;
  if (r.status !== 201) throw new Error(`setup: ${r.status} ${await r.text()}`);
}

beforeAll(async () => {
  w = await startWorld({ rate_limits: { token: { burst: 10_000, per_second: 10_000 } } });
  attacker = await generateKeyPair('ES256', { extractable: true });
  rsa = await generateKeyPair('RS256', { extractable: true });
  const scp = await generateKeyPair('ES256', { extractable: true });
  scpKey = scp.privateKey;

  // An issuer whose registered key is RSA but that may only use ES256: an RS256 token must be refused
  // even though the key would verify it.
  await mustCreate(w.t.admin('POST', '/admin/api/issuers', {
    issuer: RSA_IDP, jwks: { keys: [{ ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1' }] }, audiences: ['intentgate'], algorithms: ['ES256'],
  }));
  // An issuer that puts scopes in `scp` (as some identity providers do).
  await mustCreate(w.t.admin('POST', '/admin/api/issuers', {
    issuer: SCP_IDP, jwks: { keys: [{ ...(await exportJWK(scp.publicKey)), kid: 'scp-1', alg: 'ES256' }] }, audiences: ['intentgate'],
    algorithms: ['ES256'], scope_claim: 'scp',
  }));

  const r = await w.t.admin('GET', `/admin/api/issuers/${encodeURIComponent(IDP)}`);
  idpPublicJwk = ((await r.json()) as { jwks: { keys: JWK[] } }).jwks.keys[0]!;

  attackerJwks = createServer((_req, res) => {
    attackerJwksHits++;
    void exportJWK(attacker.publicKey).then((jwk) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [{ ...jwk, kid: 'attacker-1', alg: 'ES256' }] }));
    });
  });
  await new Promise<void>((resolve) => attackerJwks.listen(0, '127.0.0.1', resolve));
  attackerJwksUrl = `http://127.0.0.1:${(attackerJwks.address() as AddressInfo).port}/jwks.json`;
});

afterAll(async () => {
  await new Promise((resolve) => attackerJwks?.close(resolve));
  await w?.t.stop();
});

type Body = Record<string, unknown>;

/** 400 invalid_request, a description matching `phrase`, no token, and the token not echoed back. */
async function expectRefused(res: Response, phrase: RegExp, token?: string): Promise<Body> {
  const text = await res.text();
  const body = JSON.parse(text) as Body;
  expect({ status: res.status, error: body.error }, text.slice(0, 500)).toEqual({ status: 400, error: 'invalid_request' });
  expect(typeof body.error_description).toBe('string');
  expect(body.error_description).toMatch(phrase);
  expect(body).not.toHaveProperty('access_token');
  if (token && token.length > 20) expect(text).not.toContain(token.split('.')[1] ?? token);
  return body;
}

const present = (subject: string, extra: Record<string, string | string[]> = {}) => w.exchange('agent', exchangeParams(subject, extra));

describe('subject token: signature and algorithm (RFC 8725 §2.1, §3.1)', () => {
  it('accepts the world issuer\'s own token (control)', async () => {
    expect((await present(await w.userToken())).status).toBe(200);
  });

  it('refuses a token signed by another key under the issuer\'s kid', async () => {
    const token = await w.userToken({}, {}, attacker.privateKey);
    await expectRefused(await present(token), /subject_token signature is invalid/, token);
  });

  it('refuses a genuine token whose claims were altered after signing', async () => {
    const [h, , s] = (await w.userToken()).split('.');
    const forged = `${h}.${b64(baseClaims({ sub: 'ceo' }))}.${s}`;
    await expectRefused(await present(forged), /subject_token signature is invalid/, forged);
  });

  it('reads an ES256 signature only as r‖s of 64 bytes: the same signature in DER, padded, or cut short is refused', async () => {
    const token = await signRaw({ alg: 'ES256', kid: 'idp-1', typ: 'JWT' }, baseClaims(), w.idpKey);
    const [h, p, s] = token.split('.') as [string, string, string];
    const rs = Buffer.from(s, 'base64url');
    const int = (v: Buffer) => {
      let i = 0;
      while (i < v.length - 1 && v[i] === 0) i++;
      const m = v.subarray(i);
      return Buffer.concat([Buffer.of(2, m.length + (m[0]! & 0x80 ? 1 : 0)), ...(m[0]! & 0x80 ? [Buffer.of(0)] : []), m]);
    };
    const body = Buffer.concat([int(rs.subarray(0, 32)), int(rs.subarray(32))]);
    const der = Buffer.concat([Buffer.of(0x30, body.length), body]);
    for (const sig of [der, Buffer.concat([rs, Buffer.of(0)]), rs.subarray(0, 63), Buffer.alloc(64)]) {
      const forged = `${h}.${p}.${sig.toString('base64url')}`;
      await expectRefused(await present(forged), /subject_token signature is invalid/, forged);
    }
    expect((await present(token)).status).toBe(200);
  });

  it('refuses a token signed with a kid the issuer does not publish', async () => {
    const token = await w.userToken({}, { kid: 'idp-2' }, attacker.privateKey);
    await expectRefused(await present(token), /key the issuer does not publish/, token);
  });

  it('refuses RS256 from an issuer that allows only ES256 (kid idp-1)', async () => {
    const token = await sign(baseClaims(), { alg: 'RS256', kid: 'idp-1', typ: 'JWT' }, rsa.privateKey);
    await expectRefused(await present(token), /algorithm this issuer may not use/, token);
  });

  it('refuses RS256 even with the issuer\'s registered RSA key, until the issuer allows RS256', async () => {
    const token = await sign(baseClaims({ iss: RSA_IDP }), { alg: 'RS256', kid: 'rsa-1', typ: 'JWT' }, rsa.privateKey);
    await expectRefused(await present(token), /algorithm this issuer may not use/, token);
    // Control: the very same token passes once the issuer's allowlist includes RS256.
    const patched = await w.t.admin('PATCH', `/admin/api/issuers/${encodeURIComponent(RSA_IDP)}`, { algorithms: ['RS256'] });
    expect(patched.status).toBe(200);
    expect((await present(token)).status).toBe(200);
    const back = await w.t.admin('PATCH', `/admin/api/issuers/${encodeURIComponent(RSA_IDP)}`, { algorithms: ['ES256'] });
    expect(back.status).toBe(200);
    await expectRefused(await present(token), /algorithm this issuer may not use/, token);
  });

  it('refuses an unsigned token (alg none, in any spelling)', async () => {
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      const token = `${b64({ alg, typ: 'JWT', kid: 'idp-1' })}.${b64(baseClaims())}.`;
      await expectRefused(await present(token), /algorithm this issuer may not use|not a valid JWT/, token);
    }
    // alg none with a signature part that is not empty is refused just the same.
    const withSig = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(baseClaims())}.${Buffer.from('sig').toString('base64url')}`;
    await expectRefused(await present(withSig), /algorithm this issuer may not use|not a valid JWT/, withSig);
  });

  it('refuses HS256 keyed with the issuer\'s public key (algorithm confusion)', async () => {
    const pem = await exportSPKI(await importJWK(idpPublicJwk, 'ES256', { extractable: true }) as CryptoKey);
    const secrets = [new TextEncoder().encode(pem), new TextEncoder().encode(JSON.stringify(idpPublicJwk)), Buffer.from(idpPublicJwk.x!, 'base64url')];
    for (const secret of secrets) {
      for (const alg of ['HS256', 'HS512']) {
        const token = await sign(baseClaims(), { alg, kid: 'idp-1', typ: 'JWT' }, secret);
        await expectRefused(await present(token), /algorithm this issuer may not use/, token);
      }
    }
    const rsaPem = new TextEncoder().encode(await exportSPKI(rsa.publicKey));
    const token = await sign(baseClaims({ iss: RSA_IDP }), { alg: 'HS256', kid: 'rsa-1', typ: 'JWT' }, rsaPem);
    await expectRefused(await present(token), /algorithm this issuer may not use/, token);
  });

  it('never uses a key from the token\'s own jwk, jku or x5u header', async () => {
    const attackerJwk = { ...(await exportJWK(attacker.publicKey)), kid: 'attacker-1', alg: 'ES256' };
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ jwk: attackerJwk, kid: 'idp-1' }, /signature is invalid/],
      [{ jwk: attackerJwk }, /signature is invalid|key the issuer does not publish/],
      [{ jku: attackerJwksUrl, kid: 'attacker-1' }, /key the issuer does not publish/],
      [{ jku: attackerJwksUrl, kid: 'idp-1' }, /signature is invalid/],
      [{ x5u: attackerJwksUrl, kid: 'attacker-1' }, /key the issuer does not publish/],
    ];
    for (const [header, phrase] of cases) {
      const token = await w.userToken({}, header, attacker.privateKey);
      await expectRefused(await present(token), phrase, token);
    }
    expect(attackerJwksHits).toBe(0);
  });

  it('refuses a critical header extension it does not understand', async () => {
    // jose will not sign with an unknown crit; sign the JWS by hand with the issuer's real key.
    const token = await signRaw({ alg: 'ES256', kid: 'idp-1', typ: 'JWT', crit: ['urn:example:must-understand'], 'urn:example:must-understand': true }, baseClaims(), w.idpKey);
    await expectRefused(await present(token), /not a valid JWT/, token);
  });
});

describe('subject token: time claims (RFC 7519 §4.1, with the configured 60 s skew)', () => {
  it('refuses an expired token', async () => {
    const token = await w.userToken({ iat: now() - 7200, exp: now() - 3600 });
    await expectRefused(await present(token), /subject_token has expired/, token);
  });

  it('refuses a token that expired within the clock skew (no zero- or negative-lifetime token)', async () => {
    const token = await w.userToken({ iat: now() - 600, exp: now() - 30 });
    await expectRefused(await present(token), /subject_token has expired/, token);
  });

  it('refuses a token whose nbf is in the future', async () => {
    const token = await w.userToken({ nbf: now() + 3600 });
    await expectRefused(await present(token), /subject_token is not yet valid/, token);
  });

  it('refuses a token issued in the future beyond the skew, accepts one within it', async () => {
    const token = await w.userToken({ iat: now() + 600 });
    await expectRefused(await present(token), /issued in the future|iat/, token);
    expect((await present(await w.userToken({ iat: now() + 20 }))).status).toBe(200);
  });

  it('refuses a token without exp', async () => {
    const token = await w.userToken({ exp: undefined });
    await expectRefused(await present(token), /exp.*missing/, token);
  });

  it('refuses time claims that are not numbers', async () => {
    for (const claims of [{ exp: String(now() + 3600) }, { nbf: 'yesterday' }, { iat: 'now' }] as unknown as JWTPayload[]) {
      const token = await w.userToken(claims);
      await expectRefused(await present(token), /subject_token/, token);
    }
  });
});

describe('subject token: identity, issuer, audience and type', () => {
  it('refuses a token without sub', async () => {
    const token = await w.userToken({ sub: undefined });
    await expectRefused(await present(token), /sub.*missing/, token);
  });

  // RFC 7519 §4.1.2: sub is a StringOrURI; RFC 9068 §2.2: it identifies the principal. An empty or
  // non-string sub identifies nobody and must not become the user of a ledger entry or issued token.
  it('refuses an empty sub', async () => {
    const token = await w.userToken({ sub: '' });
    await expectRefused(await present(token), /sub/, token);
  });

  it('refuses a sub that is not a string (number, object, array)', async () => {
    for (const sub of [12345, { id: 'alice' }, ['alice']] as unknown[]) {
      const token = await w.userToken({ sub } as JWTPayload);
      await expectRefused(await present(token), /sub/, token);
    }
  });

  it('sanity: the signRaw helper makes tokens the issuer accepts', async () => {
    expect((await present(await signRaw({ alg: 'ES256', kid: 'idp-1', typ: 'JWT' }, baseClaims(), w.idpKey))).status).toBe(200);
  });

  it('refuses a token without iss, and one whose iss is not a string', async () => {
    await expectRefused(await present(await w.userToken({ iss: undefined })), /no issuer/);
    await expectRefused(await present(await w.userToken({ iss: 42 } as unknown as JWTPayload)), /no issuer/);
  });

  it('refuses a token from an untrusted issuer, compared exactly', async () => {
    for (const iss of ['https://evil.test', `${IDP}/`, IDP.toUpperCase(), 'http://idp.test']) {
      const token = await w.userToken({ iss }, {}, attacker.privateKey);
      await expectRefused(await present(token), /subject_token issuer is not trusted/, token);
    }
  });

  it('refuses a token for another audience, or none', async () => {
    for (const aud of ['someone-else', ['someone-else', 'another'], undefined] as Array<string | string[] | undefined>) {
      const token = await w.userToken({ aud });
      await expectRefused(await present(token), /audience is not accepted/, token);
    }
  });

  it('accepts a token whose aud array includes intentgate (control)', async () => {
    expect((await present(await w.userToken({ aud: ['someone-else', 'intentgate'] }))).status).toBe(200);
  });

  it('refuses a typ the issuer is not configured for, or none', async () => {
    for (const typ of ['foo', 'JOSE', 'id_token+jwt', 'dpop+jwt']) {
      const token = await w.userToken({}, { typ });
      await expectRefused(await present(token), /subject_token typ must be one of JWT, at\+jwt/, token);
    }
    const untyped = await w.userToken({}, { typ: undefined });
    await expectRefused(await present(untyped), /subject_token typ must be one of/, untyped);
  });

  it('accepts the configured typs, compared as media types (JWT, at+jwt, application/at+jwt)', async () => {
    for (const typ of ['JWT', 'jwt', 'at+jwt', 'application/at+jwt']) {
      expect((await present(await w.userToken({}, { typ }))).status, typ).toBe(200);
    }
  });

  it('refuses a malformed may_act claim', async () => {
    const token = await w.userToken({ may_act: 'agent' });
    await expectRefused(await present(token), /may_act claim is malformed/, token);
  });

  // RFC 8693 §4.4: may_act restricts who may act. One whose sub cannot be read must not read as "anyone".
  it('refuses a may_act whose sub is not a string (fail closed, not "no restriction")', async () => {
    const token = await w.userToken({ may_act: { sub: 42 } });
    await expectRefused(await present(token), /may_act/, token);
  });

  it('nests an upstream act claim from the subject token under this client', async () => {
    const res = await present(await w.userToken({ act: { sub: 'upstream-agent' } }));
    expect(res.status).toBe(200);
    const { access_token } = (await res.json()) as { access_token: string };
    expect(decodeJwt(access_token).act).toEqual({ sub: 'agent', act: { sub: 'upstream-agent' } });
  });

  // RFC 8693 §4.1: act is a JSON object whose sub identifies the actor; a malformed one must not be
  // copied into the issued token's delegation chain.
  it('refuses a malformed act claim in the subject token', async () => {
    for (const act of ['upstream-agent', {}, { sub: 7 }, ['upstream-agent'], { sub: 'a', act: 'b' }] as unknown[]) {
      const token = await w.userToken({ act } as JWTPayload);
      await expectRefused(await present(token), /act/, token);
    }
  });

  it('refuses a subject token whose act chain would exceed the delegation depth', async () => {
    let act: Record<string, unknown> = { sub: 'hop-1' };
    for (let i = 2; i <= 5; i++) act = { sub: `hop-${i}`, act };
    const token = await w.userToken({ act });
    await expectRefused(await present(token), /deeper than 5 hops/, token);
  });

  it('refuses a token whose may_act names another client', async () => {
    const token = await w.userToken({ may_act: { sub: 'other-agent' } });
    await expectRefused(await present(token), /may_act does not allow this client/, token);
  });
});

describe('subject token: shape', () => {
  it('refuses an encrypted token (JWE, five parts)', async () => {
    const enc = await generateKeyPair('ECDH-ES+A256KW', { extractable: true });
    const inner = await w.userToken();
    const jwe = await new CompactEncrypt(new TextEncoder().encode(inner))
      .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', cty: 'JWT', kid: 'idp-1' })
      .encrypt(enc.publicKey);
    expect(jwe.split('.')).toHaveLength(5);
    await expectRefused(await present(jwe), /encrypted \(JWE\)/, jwe);
  });

  it('refuses something that is not a JWT', async () => {
    for (const token of ['hello', 'a.b.c', 'a.b', '..', '...', 'eyJhbGciOiJFUzI1NiJ9', `${b64({ alg: 'ES256' })}.not-json.sig`, `${b64('just a string')}.${b64({})}.x`]) {
      await expectRefused(await present(token), /is not a JWT|not a valid JWT/);
    }
  });

  it('refuses a token that claims intentgate as issuer but is signed by someone else', async () => {
    const forged = await sign({ ...baseClaims({ iss: w.t.issuer, aud: 'agent', client_id: 'agent' }) }, { alg: 'ES256', typ: 'at+jwt' }, attacker.privateKey);
    await expectRefused(await present(forged), /signature is invalid|key the issuer does not publish/, forged);
  });

  it('refuses an intentgate token presented by a client that is not its audience', async () => {
    const res = await present(await w.userToken());
    expect(res.status).toBe(200);
    const { access_token } = (await res.json()) as { access_token: string };
    expect(decodeJwt(access_token).aud).toBe(EXPENSES);
    const again = await w.exchange('sub-agent', exchangeParams(access_token, { scope: 'expenses:read' }));
    await expectRefused(again, /may not be presented by this client/, access_token);
  });
});

describe('subject token: issuer scope claim', () => {
  const scpToken = (claims: JWTPayload) => sign(baseClaims({ iss: SCP_IDP, scope: undefined, ...claims }), { alg: 'ES256', kid: 'scp-1', typ: 'JWT' }, scpKey);

  it('reads scopes from scp for an issuer configured with scope_claim: scp (array and string)', async () => {
    for (const scp of [['expenses:read', 'expenses:submit'], 'expenses:read expenses:submit']) {
      const res = await present(await scpToken({ scp }));
      const body = (await res.json()) as Record<string, unknown>;
      expect(res.status, JSON.stringify(body)).toBe(200);
      expect(body.scope).toBe('expenses:read');
      expect(decodeJwt(body.access_token as string)).toMatchObject({ sub: 'alice', scope: 'expenses:read' });
    }
  });

  it('ignores `scope` for that issuer: a scope only in the wrong claim grants nothing', async () => {
    const res = await present(await scpToken({ scope: 'expenses:read' }));
    const body = (await res.json()) as Record<string, unknown>;
    expect(res.status).toBe(400);
    expect(body.error).toBe('invalid_scope');
    expect(body).not.toHaveProperty('access_token');
  });

  it('keeps the users of two issuers apart: the same sub at another issuer is another user', async () => {
    const res = await present(await scpToken({ scp: 'expenses:read' }));
    expect(res.status).toBe(200);
    const { access_token } = (await res.json()) as { access_token: string };
    const row = await w.t.server.db('issued_tokens').where({ jti: decodeJwt(access_token).jti }).first();
    expect(row).toMatchObject({ subject: 'alice', subject_issuer: SCP_IDP });
  });
});
