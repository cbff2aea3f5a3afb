import http from 'node:http';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { safeDescription } from '../../src/http/errors.ts';
import { isRejectedInput, isStorageFailure } from '../../src/store/errors.ts';
import { holder, proof } from '../helpers/dpop.ts';
import { basicAuth } from '../helpers/server.ts';
import { ACCESS_TOKEN_TYPE, details, EXPENSES, exchangeParams, IDP, startWorld, TOKEN_EXCHANGE, type World } from '../helpers/world.ts';

// Issue #10, items 1, 9, 10 and 11: what an outside attacker sends at intentgate's edge (parameter
// floods, hostile bytes, invisible text, malformed client authentication) is refused with the RFC's
// error, never truncated, never a 500 or a false 503, and never echoed back raw.

let w: World;
beforeAll(async () => { w = await startWorld({ rate_limits: { token: { burst: 100_000, per_second: 100_000 }, admin: { burst: 100_000, per_second: 100_000 } } }); });
afterAll(async () => { await w?.t.stop(); });

interface Answer { status: number; headers: http.IncomingHttpHeaders; text: string; json: Record<string, unknown> }

/** A raw HTTP request: any header value (even empty), any body bytes. */
function send(method: string, path: string, headers: Record<string, string>, body?: string | Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${w.t.url}${path}`, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: Record<string, unknown> = {};
        try { json = JSON.parse(text) as Record<string, unknown>; } catch { /* not JSON */ }
        resolve({ status: res.statusCode!, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

const FORM = 'application/x-www-form-urlencoded';
const form = (params: Record<string, string | string[]>) => {
  const f = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) for (const one of [v].flat()) f.append(k, one);
  return f.toString();
};
const junk = (n: number) => Array.from({ length: n }, (_, i) => `junk${i}=x`).join('&');
const basic = (client: string) => basicAuth(...w.creds[client]!);

/** POST /token as `client` (HTTP Basic) with a raw form body. */
const postToken = (client: string, body: string | Buffer, extra: Record<string, string> = {}) =>
  send('POST', '/token', { 'content-type': FORM, authorization: basic(client), ...extra }, body);

/** A token-exchange form without `scope`, for attacks that append parameters after junk. */
async function exchangeForm(extra: Record<string, string | string[]> = {}): Promise<string> {
  const p = exchangeParams(await w.userToken(), extra);
  delete p.scope;
  return form({ grant_type: TOKEN_EXCHANGE, ...p });
}

// RFC 6749 §5.2: error_description is %x20-21 / %x23-5B / %x5D-7E.
const RFC6749_DESCRIPTION = /^[\x20\x21\x23-\x5B\x5D-\x7E]*$/;

/** An OAuth error answer: status, code, a description within RFC 6749's characters, no token. */
function expectError(a: Answer, status: number, code: string, phrase?: RegExp): void {
  expect({ status: a.status, error: a.json.error }, a.text.slice(0, 400)).toEqual({ status, error: code });
  expect(a.json.error_description).toMatch(RFC6749_DESCRIPTION);
  if (phrase) expect(a.json.error_description).toMatch(phrase);
  expect(a.json).not.toHaveProperty('access_token');
}

describe('item 1: no parameter is ever dropped', () => {
  it('refuses 1,000 junk keys followed by a scope that would narrow the grant', async () => {
    expectError(await postToken('agent', `${await exchangeForm()}&${junk(1000)}&scope=expenses:read`), 400, 'invalid_request', /more than 100 parameters/);
  });

  it('refuses 1,000 junk keys followed by an actor_token issued to another client', async () => {
    const other = await postToken('other-agent', form({ grant_type: TOKEN_EXCHANGE, ...exchangeParams(await w.userToken()) }));
    expect(other.status).toBe(200);
    const body = `${await exchangeForm()}&scope=expenses:read&${junk(1000)}&${form({ actor_token: other.json.access_token as string, actor_token_type: ACCESS_TOKEN_TYPE })}`;
    expectError(await postToken('agent', body), 400, 'invalid_request', /more than 100 parameters/);
  });

  it('refuses 1,000 junk keys followed by authorization_details', async () => {
    const body = `${await exchangeForm()}&scope=expenses:submit&${junk(1000)}&${form({ authorization_details: details('submit', { type: 'Expense', id: 'exp_1' }) })}`;
    expectError(await postToken('agent', body), 400, 'invalid_request', /more than 100 parameters/);
  });

  it('refuses a duplicate scope, behind junk or not', async () => {
    expectError(await postToken('agent', `${await exchangeForm()}&scope=expenses:read&${junk(1000)}&scope=expenses:approve`), 400, 'invalid_request');
    expectError(await postToken('agent', `${await exchangeForm()}&scope=expenses:read&scope=expenses:approve`), 400, 'invalid_request', /scope must not be provided twice/);
  });

  it('refuses any other single-valued parameter twice, client_credentials included', async () => {
    for (const dup of ['intent=a&intent=b', `grant_type=${encodeURIComponent(TOKEN_EXCHANGE)}`, 'review_id=rev_a&review_id=rev_b', 'x=1&x=2']) {
      expectError(await postToken('agent', `${await exchangeForm()}&scope=expenses:read&${dup}`), 400, 'invalid_request', /twice/);
    }
    expectError(await postToken('batch', `grant_type=client_credentials&resource=${encodeURIComponent(EXPENSES)}&${junk(1000)}&scope=expenses:read`), 400, 'invalid_request', /more than 100 parameters/);
    expectError(await postToken('batch', `grant_type=client_credentials&resource=${encodeURIComponent(EXPENSES)}&scope=expenses:read&scope=expenses:write`), 400, 'invalid_request', /twice/);
  });

  it('reads every parameter up to the cap: a trailing scope behind 80 junk keys is honoured', async () => {
    const res = await postToken('agent', `${await exchangeForm()}&${junk(80)}&scope=expenses:read`);
    expect(res.status, res.text).toBe(200);
    expect(decodeJwt(res.json.access_token as string).scope).toBe('expenses:read');
  });

  it('still lets resource repeat (RFC 8707), answered by the one-target rule', async () => {
    expectError(await postToken('agent', `${await exchangeForm()}&scope=expenses:read&resource=${encodeURIComponent('https://hr.example')}`), 400, 'invalid_target');
  });

  it('applies the same cap and duplicate rule at introspection and revocation', async () => {
    for (const path of ['/token/introspection', '/token/revocation']) {
      const headers = { 'content-type': FORM, authorization: basic('expenses-rs') };
      expectError(await send('POST', path, headers, `${junk(1000)}&token=abc`), 400, 'invalid_request', /more than 100 parameters/);
      expectError(await send('POST', path, headers, 'token=abc&token=def'), 400, 'invalid_request', /token must not be provided twice/);
      expectError(await send('POST', path, headers, 'token=abc&token_type_hint=access_token&token_type_hint=refresh_token'), 400, 'invalid_request', /twice/);
      const ok = await send('POST', path, headers, 'token=abc');
      expect(ok.status).toBe(200);
    }
  });

  it('holds query strings to the same rules on admin and ledger GET routes', async () => {
    const admin = { authorization: `Bearer ${w.t.adminToken}` };
    for (const q of ['kind=exchange.granted&kind=exchange.denied', junk(150), 'kind=%FF', 'kind=a%00b', 'kind=%E0%80', 'kind=%ZZ', 'limit=5&limit=500']) {
      const a = await send('GET', `/admin/api/ledger?${q}`, admin);
      expectError(a, 400, 'invalid_request');
      expect(a.json).toHaveProperty('field', null);
    }
    expect((await send('GET', '/admin/api/ledger?kind=exchange.granted&limit=5', admin)).status).toBe(200);
    expectError(await send('GET', '/.well-known/ledger-checkpoint?from=1&from=2', {}), 400, 'invalid_request', /from must not be provided twice/);
    expectError(await send('GET', '/admin/api/clients?limit=1&limit=2', admin), 400, 'invalid_request');
  });

  it('refuses JSON bodies that name a member twice (admin API, /ledger/events, authorization_details)', async () => {
    const created = await send('POST', '/admin/api/clients', { authorization: `Bearer ${w.t.adminToken}`, 'content-type': 'application/json' },
      '{"client_id":"dup-a","grant_types":["client_credentials"],"client_id":"dup-b"}');
    expectError(created, 400, 'invalid_request', /names a member twice/);
    expect((await w.t.admin('GET', '/admin/api/clients/dup-a')).status).toBe(404);
    expect((await w.t.admin('GET', '/admin/api/clients/dup-b')).status).toBe(404);
    // Nested, and written with an escape: still the same name.
    const nested = await send('POST', '/admin/api/revocations', { authorization: `Bearer ${w.t.adminToken}`, 'content-type': 'application/json' },
      '{"user":{"issuer":"https://idp.test","sub":"alice","\\u0073ub":"bob"}}');
    expectError(nested, 400, 'invalid_request', /twice/);
    const event = await send('POST', '/ledger/events', { authorization: basic('expenses-rs'), 'content-type': 'application/json' },
      '{"jti":"x","outcome":"success","action":"read","action":"delete_all"}');
    expectError(event, 400, 'invalid_request', /twice/);
    const ad = '[{"type":"tool_call","action":"read","object":{"type":"Expense","id":"exp_1","id":"exp_2"}}]';
    expectError(await postToken('agent', `${await exchangeForm()}&scope=expenses:read&${form({ authorization_details: ad })}`), 400, 'invalid_authorization_details', /twice/);
  });

  it('refuses a token request that is not a UTF-8 form', async () => {
    const body = await exchangeForm();
    expectError(await postToken('agent', body, { 'content-type': 'application/json' }), 400, 'invalid_request', /Content-Type/);
    expectError(await postToken('agent', body, { 'content-type': `${FORM}; charset=iso-8859-1` }), 400, 'invalid_request', /UTF-8/);
    expect((await postToken('agent', `${body}&scope=expenses:read`, { 'content-type': `${FORM}; charset=UTF-8` })).status).toBe(200);
  });
});

describe('item 9: hostile bytes are refused before any query', () => {
  it('refuses NUL in resource, audience, authorization_details, intent and subject_token with 400, never 500', async () => {
    const t = await w.userToken();
    for (const extra of [
      { resource: `${EXPENSES}/\u0000` },
      { resource: undefined, audience: 'sub-agent\u0000' },
      { authorization_details: `${details('read', { type: 'Expense', id: 'exp_1' })}\u0000` },
      { intent: 'Read the expenses\u0000' },
      { subject_token: `${t}\u0000` },
    ]) {
      const p: Record<string, string | string[]> = { ...exchangeParams(t) };
      for (const [k, v] of Object.entries(extra)) if (v === undefined) delete p[k]; else p[k] = v;
      expectError(await postToken('agent', form({ grant_type: TOKEN_EXCHANGE, ...p })), 400, 'invalid_request', /control characters/);
    }
    expectError(await postToken('batch', form({ grant_type: 'client_credentials', resource: `${EXPENSES}\u0000`, scope: 'expenses:read' })), 400, 'invalid_request');
  });

  it('refuses \\u0000 inside authorization_details JSON as invalid_authorization_details', async () => {
    const res = await postToken('agent', form({ grant_type: TOKEN_EXCHANGE, ...exchangeParams(await w.userToken(), {
      scope: 'expenses:submit', authorization_details: '[{"type":"tool_call","action":"submit","object":{"type":"Expense","id":"exp\\u0000"}}]',
    }) }));
    expectError(res, 400, 'invalid_authorization_details', /NUL/);
  });

  it('answers a NUL at the end of the subject token iss with 400, not a false outage', async () => {
    for (const claims of [{ iss: `${IDP}\u0000` }, { sub: 'alice\u0000' }, { groups: ['a\u0000'] }]) {
      const res = await postToken('agent', form({ grant_type: TOKEN_EXCHANGE, ...exchangeParams(await w.userToken(claims)) }));
      expectError(res, 400, 'invalid_request', /subject_token carries text/);
    }
  });

  it('refuses a DPoP proof whose jti holds NUL, not a false outage', async () => {
    const h = await holder();
    const res = await postToken('agent', form({ grant_type: TOKEN_EXCHANGE, ...exchangeParams(await w.userToken()) }), {
      dpop: await proof(h, `${w.t.issuer}/token`, { jti: 'replay\u0000' }),
    });
    expectError(res, 400, 'invalid_dpop_proof', /jti/);
  });

  it('refuses invalid UTF-8 in intent instead of storing U+FFFD', async () => {
    const before = Number((await w.t.server.db('ledger_head').first('seq')).seq);
    for (const bad of ['%FF', '%C0%AF', '%ED%A0%80', '%E2%82', '%']) {
      const body = `${await exchangeForm()}&scope=expenses:read`.replace(/intent=[^&]*/, `intent=Read${bad}the+expenses`);
      expectError(await postToken('agent', body), 400, 'invalid_request', /intent is not validly percent-encoded UTF-8/);
    }
    // Raw bytes that are not UTF-8, outside any escape.
    const raw = Buffer.concat([Buffer.from(`${await exchangeForm()}&scope=expenses:read&intent2=`), Buffer.from([0xff, 0xfe])]);
    expectError(await postToken('agent', raw), 400, 'invalid_request', /not valid UTF-8/);
    // Each is recorded as the authenticated agent's refusal, and no replacement character was stored anywhere.
    const kinds = await w.t.server.db('ledger_entries').where('seq', '>', before).pluck('kind');
    expect(kinds).toEqual(Array(6).fill('token.refused'));
    const personal = await w.t.server.db('ledger_personal').pluck('value');
    expect(personal.some((v: string) => v.includes('\uFFFD'))).toBe(false);
  });

  it('keeps every error_description within RFC 6749 characters and never echoes request bytes raw', async () => {
    // Member names land in descriptions (the path to a bad value, the unknown field); each carries CR, LF, TAB, U+202E, quotes.
    const hostile = 'x\r\n\t\u202E"\\';
    const ad = JSON.stringify([{ type: 'tool_call', action: 'read', object: { type: 'Expense', id: 'exp_1', [hostile]: 'a\u0000' } }]);
    const res = await postToken('agent', `${await exchangeForm()}&scope=expenses:read&${form({ authorization_details: ad })}`);
    expectError(res, 400, 'invalid_authorization_details');
    expect(res.json.error_description).toContain('%E2%80%AE');
    const admin = await send('POST', '/admin/api/clients', { authorization: `Bearer ${w.t.adminToken}`, 'content-type': 'application/json' },
      JSON.stringify({ client_id: 'echo', [hostile]: 1 }));
    expectError(admin, 400, 'invalid_request');
    expect(admin.json.field).toMatch(RFC6749_DESCRIPTION);
    expect(admin.text).not.toMatch(/[\u202E]|\\r|\\n|\\t/);
    // oidc-provider's own errors pass the same place.
    expectError(await postToken('agent', form({ grant_type: 'urn:x:\u202E"\\' })), 400, 'unsupported_grant_type');
    expect(safeDescription(`a${hostile}\u0000\ud800b`)).toBe("ax%0D%0A%09%E2%80%AE'%5C%00%EF%BF%BDb");
    expect(safeDescription('y'.repeat(2000)).length).toBeLessThan(600);
  });

  it('never reads a driver data error as storage unavailable', () => {
    const pgError = (code: string) => Object.assign(new Error('x'), { code });
    for (const code of ['22021', '22P05', '22001', '23505', '42601', '42P01', '0A000']) expect(isStorageFailure(pgError(code)), code).toBe(false);
    for (const code of ['08006', '57P01', '53300', 'XX000', 'ECONNREFUSED']) expect(isStorageFailure(pgError(code)), code).toBe(true);
    expect(isRejectedInput(pgError('22021'))).toBe(true);
    expect(isRejectedInput(pgError('08006'))).toBe(false);
  });
});

describe('item 10: nothing a reviewer cannot see', () => {
  const invisible: Record<string, string> = {
    'tag A': '\u{E0041}', 'language tag': '\u{E0001}', 'cancel tag': '\u{E007F}', 'unassigned tag': '\u{E0002}', 'arabic letter mark': '\u061C',
    'line separator': '\u2028', 'paragraph separator': '\u2029', 'left-to-right mark': '\u200E', 'BOM': '\uFEFF', 'soft hyphen': '\u00AD',
    'zero width space': '\u200B', 'mongolian vowel separator': '\u180E', 'next line (C1)': '\u0085', 'right-to-left override': '\u202E',
  };

  it('refuses every control, format, separator and tag character in intent, wherever it stands', async () => {
    const t = await w.userToken();
    for (const [name, c] of Object.entries(invisible)) {
      for (const intent of [`Approve ${c}expense 42`, `${c}Approve expense 42`, `Approve expense 42${c}`]) {
        const res = await postToken('agent', form({ grant_type: TOKEN_EXCHANGE, ...exchangeParams(t, { intent }) }));
        expect(res.status, name).toBe(400);
        expectError(res, 400, 'invalid_request', /intent must not contain/);
      }
    }
    const ok = await postToken('agent', form({ grant_type: TOKEN_EXCHANGE, ...exchangeParams(t, { intent: 'Résumé des dépenses, 報告 📄 (week 12)' }) }));
    expect(ok.status, ok.text).toBe(200);
  });

  it('applies the same rule to every string in authorization_details', async () => {
    const t = await w.userToken();
    for (const c of Object.values(invisible)) {
      for (const ad of [details('submit', { type: 'Expense', id: `exp_42${c}` }), details('submit', { type: 'Expense', id: 'exp_42' }, `expense${c}_submission`)]) {
        const res = await postToken('agent', form({ grant_type: TOKEN_EXCHANGE, ...exchangeParams(t, { scope: 'expenses:submit', authorization_details: ad }) }));
        // A raw control character (here U+0085) is already refused by the edge, for every parameter alike.
        if (/\p{Cc}/u.test(c)) expectError(res, 400, 'invalid_request', /control characters/);
        else expectError(res, 400, 'invalid_authorization_details', /must not contain control, format/);
      }
    }
  });

  it('applies the same rule to review comments, revocation reasons and names an admin enters', async () => {
    const admin = { authorization: `Bearer ${w.t.adminToken}`, 'content-type': 'application/json' };
    for (const c of Object.values(invisible)) {
      expectError(await send('POST', '/admin/api/reviews/rev_x/approve', admin, JSON.stringify({ comment: `Looks fine${c}` })), 400, 'invalid_request', /comment must not contain/);
      expectError(await send('POST', '/admin/api/clients', admin, JSON.stringify({ client_id: 'named', client_name: `Agent${c}` })), 400, 'invalid_request', /client_name/);
      expectError(await send('POST', '/admin/api/revocations', admin, JSON.stringify({ jti: 'j', reason: `because${c}` })), 400, 'invalid_request', /reason/);
    }
  });
});

describe('item 11: a malformed Authorization header is a failed client authentication', () => {
  const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
  const malformed = [
    'Basic !!!', `Basic ${b64('agent')}`, `Basic ${b64('%ZZ:secret')}`, `Basic ${b64('agent:%E0')}`, '', 'Basic', 'Basic ',
    `Basic ${b64(':secret')}`, `Basic ${b64('agent:')}`, `Basic  ${b64('agent:x')}`, `Basic ${b64('agent:x').replace(/=+$/, '')}=`,
    `Basic ${Buffer.from([0x61, 0x3a, 0xff]).toString('base64')}`, `Basic ${b64('age\u0001nt:x')}`, 'Bearer abc', 'Digest x',
  ];

  it('answers 401 invalid_client with a Basic challenge on /token, introspection and revocation', async () => {
    for (const path of ['/token', '/token/introspection', '/token/revocation']) {
      for (const authorization of malformed) {
        const body = path === '/token' ? form({ grant_type: 'client_credentials', resource: EXPENSES }) : 'token=abc';
        const a = await send('POST', path, { 'content-type': FORM, authorization }, body);
        expect(a.status, `${path} ${JSON.stringify(authorization)}`).toBe(401);
        expectError(a, 401, 'invalid_client');
        expect(a.headers['www-authenticate']).toMatch(/^Basic realm="/);
      }
    }
  });

  it('answers 401 invalid_client to client credentials in the body that cannot be read', async () => {
    const [id, secret] = w.creds['expenses-rs']!;
    for (const body of [form({ token: 'abc', client_id: id, client_secret: `${secret}\u0000` }), `token=abc&client_id=${id}&client_secret=%FF`, form({ token: 'abc', client_id: 'a\u0000b', client_secret: 'x' })]) {
      for (const path of ['/token/introspection', '/token/revocation']) expectError(await send('POST', path, { 'content-type': FORM }, body), 401, 'invalid_client');
    }
  });

  it('answers 401 with a Basic challenge on /ledger/events too', async () => {
    for (const authorization of malformed) {
      const a = await send('POST', '/ledger/events', { 'content-type': 'application/json', authorization }, '{}');
      expectError(a, 401, 'invalid_client');
      expect(a.headers['www-authenticate']).toMatch(/^Basic realm="/);
    }
  });

  it('answers 400 invalid_request to two client authentication methods in one request', async () => {
    const [id, secret] = w.creds['expenses-rs']!;
    const cases: Array<[Record<string, string>, Record<string, string>]> = [
      [{ authorization: basic('expenses-rs') }, { client_secret: secret }],
      [{ authorization: basic('expenses-rs') }, { client_assertion: 'a.b.c', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer' }],
      [{ authorization: basic('expenses-rs') }, { client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer' }],
      [{}, { client_id: id, client_secret: secret, client_assertion: 'a.b.c', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer' }],
    ];
    for (const path of ['/token', '/token/introspection', '/token/revocation']) {
      for (const [headers, extra] of cases) {
        const params: Record<string, string> = path === '/token' ? { grant_type: 'client_credentials', resource: EXPENSES } : { token: 'abc' };
        const a = await send('POST', path, { 'content-type': FORM, ...headers }, form({ ...params, ...extra }));
        expectError(a, 400, 'invalid_request', /one client authentication method/);
        expect(a.headers['www-authenticate']).toBeUndefined();
      }
    }
  });

  it('still accepts well-formed Basic, padded or not, and client_secret alone', async () => {
    const [id, secret] = w.creds['expenses-rs']!;
    const padded = basic('expenses-rs');
    for (const authorization of [padded, padded.replace(/=+$/, ''), `basic ${padded.slice(6)}`]) {
      expect((await send('POST', '/token/introspection', { 'content-type': FORM, authorization }, 'token=abc')).status, authorization).toBe(200);
    }
    const post = await send('POST', '/token/introspection', { 'content-type': FORM }, form({ token: 'abc', client_id: id, client_secret: secret }));
    expect(post.status).toBe(200);
  });
});

// Review of #10, finding 2: the walkers that check strings recurse, so nesting is bounded first.
describe('review finding 2: deeply nested JSON is refused with 400, never a stack overflow', () => {
  const deep = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`;

  it('refuses nested authorization_details, at the cap and far beyond it', async () => {
    for (const ad of [deep(8000), `[{"type":"tool_call","action":"read","object":{"type":"Expense","id":"exp_1","x":${deep(40)}}}]`]) {
      const res = await postToken('agent', `${await exchangeForm()}&scope=expenses:read&${form({ authorization_details: ad })}`);
      expectError(res, 400, 'invalid_authorization_details', /nest more than 32 levels/);
    }
  });

  it('refuses a subject_token (or actor_token) whose payload nests too deeply, before any signature check', async () => {
    const [h, , s] = (await w.userToken()).split('.');
    for (const levels of [40, 5500]) {
      const payload = Buffer.from(`{"iss":"${IDP}","sub":"alice","aud":"intentgate","exp":${Math.floor(Date.now() / 1000) + 300},"a":${deep(levels)}}`).toString('base64url');
      const forged = `${h}.${payload}.${s}`;
      expectError(await postToken('agent', form({ grant_type: TOKEN_EXCHANGE, ...exchangeParams(forged) })), 400, 'invalid_request', /subject_token nests/);
      const asActor = form({ grant_type: TOKEN_EXCHANGE, ...exchangeParams(await w.userToken(), { actor_token: forged, actor_token_type: ACCESS_TOKEN_TYPE }) });
      expectError(await postToken('agent', asActor), 400, 'invalid_request', /actor_token nests/);
    }
  });

  it('refuses nested admin JSON bodies and /ledger/events bodies', async () => {
    const headers = { authorization: `Bearer ${w.t.adminToken}`, 'content-type': 'application/json' };
    for (const levels of [40, 20000]) {
      for (const path of ['/admin/api/clients', '/admin/api/revocations', '/admin/api/policies/simulate', '/admin/api/policies/replay']) {
        expectError(await send('POST', path, headers, `{"a":${deep(levels)}}`), 400, 'invalid_request', /nest more than 32 levels/);
      }
      const event = await send('POST', '/ledger/events', { authorization: basic('expenses-rs'), 'content-type': 'application/json' }, `{"jti":"x","a":${deep(levels)}}`);
      expectError(event, 400, 'invalid_request', /nest more than 32 levels/);
    }
  });

  it('still reads JSON nested up to the cap', async () => {
    const res = await send('POST', '/admin/api/clients', { authorization: `Bearer ${w.t.adminToken}`, 'content-type': 'application/json' }, `{"client_id":"nest-ok","x":${deep(31)}}`);
    expectError(res, 400, 'invalid_request', /x is not a recognised field/);
  });
});

// Review of #10, finding 3: invisible characters outside Cc/Cf (default-ignorables, private use, unassigned).
describe('review finding 3: variation selectors, fillers, private-use and unassigned characters are refused', () => {
  const hidden: Record<string, string> = {
    'variation selector 16': '\uFE0F', 'variation selector 17': '\u{E0100}', 'hangul filler': '\u3164', 'hangul choseong filler': '\u115F',
    'hangul jungseong filler': '\u1160', 'halfwidth hangul filler': '\uFFA0', 'combining grapheme joiner': '\u034F', 'khmer vowel inherent aq': '\u17B4',
    'mongolian free variation selector': '\u180B', 'unassigned U+2065': '\u2065', 'private use': '\uE000', 'plane 15 private use': '\u{F0000}', 'braille blank': '\u2800',
  };

  it('refuses them in intent', async () => {
    const t = await w.userToken();
    for (const [name, c] of Object.entries(hidden)) {
      const res = await postToken('agent', form({ grant_type: TOKEN_EXCHANGE, ...exchangeParams(t, { intent: `Approve expense${c} 42` }) }));
      expect(res.status, name).toBe(400);
      expectError(res, 400, 'invalid_request', /intent must not contain/);
    }
  });

  it('refuses them in authorization_details and admin free text', async () => {
    const t = await w.userToken();
    const headers = { authorization: `Bearer ${w.t.adminToken}`, 'content-type': 'application/json' };
    for (const [name, c] of Object.entries(hidden)) {
      const res = await postToken('agent', form({ grant_type: TOKEN_EXCHANGE, ...exchangeParams(t, { scope: 'expenses:submit', authorization_details: details('submit', { type: 'Expense', id: `exp_42${c}` }) }) }));
      expect(res.status, name).toBe(400);
      expectError(res, 400, 'invalid_authorization_details', /must not contain/);
      expectError(await send('POST', '/admin/api/revocations', headers, JSON.stringify({ jti: 'j', reason: `because${c}` })), 400, 'invalid_request', /reason/);
    }
  });
});

// Review of #10, finding 5: TextDecoder drops a leading BOM unless told not to.
describe('review finding 5: a body starting with a byte order mark is refused', () => {
  const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

  it('refuses a BOM-prefixed form at /token, introspection and revocation', async () => {
    const body = Buffer.concat([BOM, Buffer.from(`${await exchangeForm()}&scope=expenses:read`)]);
    expectError(await postToken('agent', body), 400, 'invalid_request', /byte order mark/);
    for (const path of ['/token/introspection', '/token/revocation']) {
      const a = await send('POST', path, { 'content-type': FORM, authorization: basic('expenses-rs') }, Buffer.concat([BOM, Buffer.from('token=abc')]));
      expectError(a, 400, 'invalid_request', /byte order mark/);
    }
  });

  it('refuses a BOM-prefixed JSON body (admin API, /ledger/events)', async () => {
    const admin = await send('POST', '/admin/api/clients', { authorization: `Bearer ${w.t.adminToken}`, 'content-type': 'application/json' },
      Buffer.concat([BOM, Buffer.from('{"client_id":"bom","grant_types":["client_credentials"]}')]));
    expectError(admin, 400, 'invalid_request', /byte order mark/);
    expect((await w.t.admin('GET', '/admin/api/clients/bom')).status).toBe(404);
    const event = await send('POST', '/ledger/events', { authorization: basic('expenses-rs'), 'content-type': 'application/json' }, Buffer.concat([BOM, Buffer.from('{"jti":"x"}')]));
    expectError(event, 400, 'invalid_request', /byte order mark/);
  });
});

// Review of #10, findings 7 and 12: the user's sub is stored, indexed and shown to reviewers.
describe('review findings 7 and 12: the subject token sub is bounded and visible', () => {
  it('refuses a sub longer than 255 characters, including one too long for an index row', async () => {
    for (const sub of ['u'.repeat(256), 'u'.repeat(9000)]) {
      const res = await postToken('agent', form({ grant_type: TOKEN_EXCHANGE, ...exchangeParams(await w.userToken({ sub })) }));
      expectError(res, 400, 'invalid_request', /sub must be at most 255 characters/);
    }
    expect((await postToken('agent', form({ grant_type: TOKEN_EXCHANGE, ...exchangeParams(await w.userToken({ sub: 'u'.repeat(255) })) }))).status).toBe(200);
  });

  it('refuses a sub with characters a reviewer cannot see', async () => {
    for (const sub of ['alice\u200B', 'ali\u202Ece', 'alice\uFE0F', '\u3164']) {
      const res = await postToken('agent', form({ grant_type: TOKEN_EXCHANGE, ...exchangeParams(await w.userToken({ sub })) }));
      expectError(res, 400, 'invalid_request', /subject_token sub must not contain/);
    }
  });

  it('reads SQLSTATE class 54 (program limit exceeded) as rejected input, not an outage', () => {
    const pgError = (code: string) => Object.assign(new Error('x'), { code });
    for (const code of ['54000', '54001']) {
      expect(isRejectedInput(pgError(code)), code).toBe(true);
      expect(isStorageFailure(pgError(code)), code).toBe(false);
    }
  });
});

describe('review finding 12: a policy source is visible text', () => {
  it('refuses a source with invisible characters', async () => {
    const headers = { authorization: `Bearer ${w.t.adminToken}`, 'content-type': 'application/json' };
    for (const c of ['\u200B', '\u202E', '\uFE0F', '\u3164']) {
      const res = await send('POST', '/admin/api/policies', headers, JSON.stringify({ document: 'not: a policy', source: `git:main${c}` }));
      expectError(res, 400, 'invalid_request', /source must not contain/);
    }
  });
});
