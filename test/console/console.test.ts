// The admin console driven in a real headless Chromium (Debian's package), against a real server. One
// browser, one file, tests in order: the machine has two cores.
import path from 'node:path';
import { decodeJwt } from 'jose';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { axeViolations, haveChromium, LAPTOP, launch, PHONE, screenshot, signIn, watchProblems } from '../helpers/browser.ts';
import { basicAuth, tokenRequest } from '../helpers/server.ts';
import { ACCESS_TOKEN_TYPE, details, EXPENSES, exchangeParams, HR, IDP, startWorld, type World } from '../helpers/world.ts';

let w: World;
let browser: Browser;
let rita: string; // a reviewer, the person rita at the test IdP
const contexts: BrowserContext[] = [];

async function newPage(viewport = LAPTOP): Promise<Page> {
  const context = await browser.newContext({ viewport });
  contexts.push(context);
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  (page as Page & { problems?: string[] }).problems = watchProblems(page);
  return page;
}
const problemsOf = (page: Page) => (page as Page & { problems?: string[] }).problems ?? [];

function introspect(jwt: string): Promise<boolean> {
  return fetch(`${w.t.url}/token/introspection`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth(...w.creds['expenses-rs']!) },
    body: new URLSearchParams({ token: jwt }),
  }).then(async (r) => ((await r.json()) as { active: boolean }).active);
}

const BIG = details('approve', { type: 'Expense', id: 'exp_big', amount: 5000 });

describe.skipIf(!haveChromium)('admin console in Chromium', () => {
  beforeAll(async () => {
    w = await startWorld({
      policy: { file: path.resolve('test/fixtures/policy/review.yaml') },
      rate_limits: { token: { burst: 100_000, per_second: 100_000 }, admin: { burst: 100_000, per_second: 100_000 } },
      exchange: { intent_max_length: 10_000 },
    });
    const created = await w.t.admin('POST', '/admin/api/clients', { client_id: 'summarizer', client_name: 'Summariser', grant_types: ['urn:ietf:params:oauth:grant-type:token-exchange'], scope: 'expenses:read hr:read' });
    w.creds.summarizer = ['summarizer', ((await created.json()) as { client_secret: string }).client_secret];
    const r = await w.t.admin('POST', '/admin/api/admins', { name: 'Rita', role: 'reviewer', user: { issuer: IDP, sub: 'rita' } });
    rita = ((await r.json()) as { token: string }).token;
    browser = await launch();
  }, 120_000);
  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    await browser?.close();
    await w?.t.stop();
  });

  it('signs in with a credential kept for the tab only, and forgets it on sign-out', async () => {
    const page = await newPage();
    await page.goto(`${w.t.url}/admin`);
    await page.getByLabel('Admin credential').fill('iga_not-a-real-credential');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('not accepted');
    expect(await page.evaluate(() => Object.keys(sessionStorage))).toEqual([]);
    await screenshot(page, 'sign-in');

    await page.getByLabel('Admin credential').fill(w.t.adminToken);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    expect(await page.evaluate(() => Object.values(sessionStorage))).toEqual([w.t.adminToken]);
    expect((await page.context().cookies()).length).toBe(0);
    const nav = await page.getByRole('navigation', { name: 'Sections' }).textContent();
    for (const item of ['Overview', 'Reviews', 'Tasks', 'Agents', 'Registry', 'Admins', 'Policies', 'Ledger']) expect(nav).toContain(item);

    // Another tab of the same browser does not have it (sessionStorage is per tab).
    const other = await page.context().newPage();
    await other.goto(`${w.t.url}/admin`);
    await other.getByLabel('Admin credential').waitFor();
    await other.close();

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Admin credential').waitFor();
    expect(await page.evaluate(() => Object.keys(sessionStorage))).toEqual([]);
    await page.reload();
    await page.getByLabel('Admin credential').waitFor();
    expect(problemsOf(page)).toEqual([]);
  });

  it('shows a pending review without reloading; the reviewer approves it with a comment, and the agent\'s next poll gets its token', async () => {
    const page = await newPage();
    await signIn(page, w.t.url, rita);
    await page.goto(`${w.t.url}/admin#/reviews`);
    await page.getByRole('heading', { name: 'Review queue' }).waitFor();
    await page.getByText('Nothing is waiting for a person.').waitFor();

    const ask = async (sub: string, extra: Record<string, string> = {}) => w.exchange('agent', exchangeParams(await w.userToken({ sub }), {
      scope: 'expenses:approve', authorization_details: BIG, intent: `Approve expense exp_big for ${sub}: receipts checked`, ...extra,
    }));
    const asked = await (await ask('alice')).json() as { error: string; review_id: string };
    expect(asked.error).toBe('authorization_pending');
    // rita's own request: marked, and not approvable by her.
    const own = await (await ask('rita')).json() as { review_id: string };

    const card = page.locator(`article[data-review="${asked.review_id}"]`);
    await card.waitFor({ timeout: 30_000 });
    const text = await card.textContent();
    expect(text).toContain('agent');
    expect(text).toContain('alice');
    expect(text).toContain(IDP);
    expect(text).toContain('Approve expense exp_big for alice: receipts checked');
    expect(text).toContain('expenses-approve-large');
    expect(text).toContain('approval_required');
    expect(text).toContain('exp_big');
    expect(text).toMatch(/\d+ h \d+ min left/);
    const ownCard = page.locator(`article[data-review="${own.review_id}"]`);
    await ownCard.waitFor();
    expect(await ownCard.textContent()).toContain('Your own request');
    expect(await ownCard.getByRole('button', { name: 'Approve' }).count()).toBe(0);
    await screenshot(page, 'reviews');

    await card.getByLabel('Comment (kept in the ledger)').fill('Receipt matches, approved');
    await card.getByRole('button', { name: 'Approve' }).click();
    await card.waitFor({ state: 'detached' });

    const granted = await ask('alice', { review_id: asked.review_id });
    expect(granted.status).toBe(200);
    const { access_token } = await granted.json() as { access_token: string };
    expect(decodeJwt(access_token)).toMatchObject({ sub: 'alice', scope: 'expenses:approve' });
    const entries = await (await w.t.admin('GET', '/admin/api/ledger?kind=review.approved')).json() as { items: Array<{ payload: Record<string, unknown> }> };
    expect(entries.items[0]!.payload).toMatchObject({ review_id: asked.review_id, comment: 'Receipt matches, approved' });
    expect(problemsOf(page)).toEqual([]);
  }, 60_000);

  it('shows a drifting task suspended with its evidence, in the queue and on its page, where an admin revokes it', async () => {
    const params = exchangeParams(await w.userToken({ sub: 'ivy' }), {
      audience: 'summarizer', scope: 'expenses:read hr:read', intent: 'Summarise the quarter',
      authorization_details: JSON.stringify([{ type: 'tool_call', action: 'read', purpose: 'summarize' }]),
    });
    delete params.resource;
    const delegation = await w.exchange('agent', params);
    expect(delegation.status).toBe(200);
    const { access_token: parent } = await delegation.json() as { access_token: string };
    const task = decodeJwt(parent).task as string;
    const hop = (scope: string, resource: string) => w.exchange('summarizer', { subject_token: parent, subject_token_type: ACCESS_TOKEN_TYPE, resource, scope, intent: 'Summarise' });
    const reading = await hop('expenses:read', EXPENSES);
    expect(reading.status).toBe(200);
    const { access_token: earlier } = await reading.json() as { access_token: string };
    // Drifting: the summariser reaches for restricted HR data; the suspend_task rule stops the task.
    const drift = await (await hop('hr:read', HR)).json() as { reasons: string[]; review_id: string };
    expect(drift.reasons).toEqual(['restricted_data_for_summary', 'task_suspended']);

    // The suspension waits in the review queue with its rule and reasons.
    const reviewer = await newPage();
    await signIn(reviewer, w.t.url, rita);
    await reviewer.goto(`${w.t.url}/admin#/reviews`);
    const card = reviewer.locator(`article[data-review="${drift.review_id}"]`);
    await card.waitFor();
    const said = await card.textContent();
    expect(said).toContain('Task suspended');
    expect(said).toContain('no-restricted-for-summaries');
    expect(said).toContain('restricted_data_for_summary');
    expect(said).toContain('summarize');

    const admin = await newPage();
    await signIn(admin, w.t.url, w.t.adminToken);
    await admin.goto(`${w.t.url}/admin#/tasks/${encodeURIComponent(task)}`);
    await admin.getByRole('heading', { name: /^Task / }).waitFor();
    const facts = await admin.locator('main').textContent();
    expect(facts).toContain('suspended');
    expect(facts).toContain('restricted_data_for_summary');
    expect(facts).toContain(drift.review_id);
    expect(facts).toContain('Summarise the quarter');
    expect(facts).toContain('ivy');
    // The suspension already revoked every token of the task, down the tree.
    expect(await admin.locator('.token').count()).toBe(2);
    expect(await admin.locator('.token .badge.bad').count()).toBe(2);
    expect(await introspect(earlier)).toBe(false);
    await screenshot(admin, 'task-suspended');

    await admin.getByRole('button', { name: 'Revoke task' }).click();
    const dialog = admin.getByRole('dialog');
    await dialog.waitFor();
    const text = await dialog.textContent();
    expect(text).toContain(`Revoke task ${task}?`);
    expect(text).toContain('revokes the task and its 0 live tokens');
    const sent = admin.waitForResponse((r) => r.request().method() === 'POST' && /\/admin\/api\/(tasks\/[^/]+\/revoke|revocations)$/.test(new URL(r.url()).pathname) && r.status() !== 404);
    await dialog.getByRole('button', { name: 'Revoke task' }).click();
    const answer = await sent;
    expect(answer.status()).toBeLessThan(300);
    expect(JSON.parse(answer.request().postData()!)).toMatchObject({ reason: 'revoked from the admin console' });
    await dialog.waitFor({ state: 'detached' });
    await admin.getByRole('heading', { name: /^Task / }).waitFor();
    expect(await admin.getByRole('button', { name: 'Revoke token' }).count()).toBe(0);

    // A token revoked from the tree: a fresh task, its token revoked from the task's page.
    const fresh = await (await w.exchange('agent', exchangeParams(await w.userToken({ sub: 'joe' }), { intent: 'Read the open reports' }))).json() as { access_token: string };
    const freshTask = decodeJwt(fresh.access_token).task as string;
    expect(await introspect(fresh.access_token)).toBe(true);
    await admin.goto(`${w.t.url}/admin#/tasks/${encodeURIComponent(freshTask)}`);
    await admin.getByRole('button', { name: 'Revoke token' }).click();
    expect(await admin.getByRole('dialog').textContent()).toContain(decodeJwt(fresh.access_token).jti as string);
    await admin.getByRole('dialog').getByRole('button', { name: 'Revoke token' }).click();
    await expect.poll(() => introspect(fresh.access_token)).toBe(false);
    await expect.poll(() => admin.locator('.token .badge.bad').count()).toBe(1);
    expect(problemsOf(admin)).toEqual([]);
    expect(problemsOf(reviewer)).toEqual([]);
  }, 90_000);

  it('creates a client and shows its secret once', async () => {
    const page = await newPage();
    await signIn(page, w.t.url, w.t.adminToken);
    await page.goto(`${w.t.url}/admin#/registry/clients`);
    await page.getByRole('button', { name: 'New client' }).click();
    await page.getByLabel('JSON').fill(JSON.stringify({ client_id: 'nightly-report', client_name: 'Nightly report', grant_types: ['client_credentials'], scope: 'expenses:read' }));
    await page.getByRole('button', { name: 'Save' }).click();
    const secretBox = page.getByRole('textbox', { name: 'Secret of nightly-report' });
    await secretBox.waitFor();
    const secret = await secretBox.inputValue();
    expect(secret.length).toBeGreaterThan(20);
    await screenshot(page, 'registry-secret');
    const works = await tokenRequest(w.t.url, { grant_type: 'client_credentials', resource: EXPENSES, scope: 'expenses:read' }, ['nightly-report', secret]);
    expect(works.status).toBe(200);

    await page.getByRole('button', { name: 'I have stored it' }).click();
    await secretBox.waitFor({ state: 'detached' });
    expect(await page.content()).not.toContain(secret);
    await page.reload();
    await page.getByRole('cell', { name: 'nightly-report', exact: true }).waitFor();
    expect(await page.content()).not.toContain(secret);
    // Not in the API either: the list never carries secrets.
    expect(await (await w.t.admin('GET', '/admin/api/clients/nightly-report')).text()).not.toContain(secret);

    // A bad edit is refused with the server's reason, naming the field.
    await page.getByRole('button', { name: 'Edit nightly-report' }).click();
    await page.getByLabel('JSON').fill('{"grant_types": ["password"]}');
    await page.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => page.getByRole('alert').first().textContent()).toContain('grant_types');
    expect(problemsOf(page)).toEqual([]);
  }, 60_000);

  it('checks a draft policy at its line, simulates it, replays it with the changed decisions, and publishes it', async () => {
    const page = await newPage();
    await signIn(page, w.t.url, w.t.adminToken);
    await page.goto(`${w.t.url}/admin#/policies`);
    const editor = page.getByLabel('Policy document (YAML)');
    await editor.waitFor();
    const current = await editor.inputValue();
    expect(current).toContain('expenses-read');

    // An error the schema finds: an unknown effect on the rule at a known line.
    const lines = current.split('\n');
    const at = lines.findIndex((l) => l.includes('id: expenses-read'));
    const broken = [...lines];
    broken[at + 1] = broken[at + 1]!.replace('effect: allow', 'effect: perhaps');
    await editor.fill(broken.join('\n'));
    await page.getByRole('button', { name: 'Check draft' }).click();
    const alert = page.locator('#editor-error [role=alert]');
    await alert.waitFor();
    expect(await alert.textContent()).toContain(`Line ${at + 2}`);
    expect(await page.locator('.gutter .err-line').textContent()).toBe(`${at + 2}\n`);

    // The draft: reading expenses now needs a review.
    const draft = current.replace(/- id: expenses-read\n(\s+)effect: allow\n/, '- id: expenses-read\n$1effect: review\n$1reason: read_needs_review\n');
    expect(draft).not.toBe(current);
    await editor.fill(draft);
    await page.getByRole('button', { name: 'Check draft' }).click();
    await page.getByText('The draft is valid.').waitFor();

    await page.getByLabel('Agent (client id)').fill('agent');
    await page.getByLabel('User issuer').fill(IDP);
    await page.getByLabel('User sub').fill('alice');
    await page.getByLabel('Resource').fill(EXPENSES);
    await page.getByLabel('Scope', { exact: true }).fill('expenses:read');
    await page.getByRole('button', { name: 'Simulate' }).click();
    await page.getByText('Outcome:').waitFor();
    expect(await page.locator('.result').textContent()).toContain('review');

    await page.getByRole('button', { name: 'Replay' }).click();
    await page.getByText(/decisions examined/).waitFor();
    const table = page.getByRole('table', { name: 'Decisions that would change' });
    await table.waitFor();
    expect(await table.locator('tbody tr').count()).toBeGreaterThanOrEqual(1);
    expect(await table.textContent()).toContain('granted');
    expect(await table.textContent()).toContain('denied');
    await table.scrollIntoViewIfNeeded();
    await screenshot(page, 'policies-replay');

    await page.getByRole('button', { name: 'Publish draft' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Publish' }).click();
    await page.getByText(/Version \d+ published\./).waitFor();
    const now = await (await w.t.admin('GET', '/admin/api/policies/current')).json() as { document: string; source: string };
    expect(now.document).toBe(draft);
    expect(now.source).toBe('admin console');
    expect(problemsOf(page)).toEqual([]);
  }, 90_000);

  it('verifies the ledger from the page, and opens an entry with its payload and inclusion proof checked in the browser', async () => {
    expect((await w.t.admin('POST', '/admin/api/ledger/checkpoint')).status).toBe(201);
    const page = await newPage();
    await signIn(page, w.t.url, w.t.adminToken);
    await page.goto(`${w.t.url}/admin#/ledger`);
    await page.getByRole('button', { name: 'Verify the ledger' }).click();
    const ok = page.getByText(/^Verified: \d+ entries, \d+ signed checkpoints? /);
    await ok.waitFor({ timeout: 60_000 });
    expect(await page.locator('progress').evaluate((p) => (p as HTMLProgressElement).value === (p as HTMLProgressElement).max)).toBe(true);
    await screenshot(page, 'ledger');

    await page.getByLabel('Kind').selectOption('review.approved');
    await page.getByRole('button', { name: 'Filter' }).click();
    await expect.poll(() => page.locator('tbody tr').count()).toBe(1);
    await page.getByRole('link', { name: /^Open \d+$/ }).click();
    await page.getByRole('heading', { name: /^Ledger entry \d+$/ }).waitFor();
    expect(await page.locator('pre.json').textContent()).toContain('Receipt matches, approved');
    await page.getByText('Checked in this browser: the path leads to the checkpoint\'s root.').waitFor();
    expect(problemsOf(page)).toEqual([]);
  }, 90_000);

  it('keeps a reviewer out of admin-only pages and actions, in the page and at the API', async () => {
    const page = await newPage();
    await signIn(page, w.t.url, rita);
    const nav = await page.getByRole('navigation', { name: 'Sections' }).textContent();
    expect(nav).not.toContain('Admins');
    await page.goto(`${w.t.url}/admin#/registry/admins`);
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('Your role (reviewer) cannot open this page');
    await page.goto(`${w.t.url}/admin#/registry/clients`);
    await page.getByRole('cell', { name: 'nightly-report', exact: true }).waitFor();
    expect(await page.getByRole('button', { name: /^(New client|Edit|Delete|Rotate)/ }).count()).toBe(0);
    await page.goto(`${w.t.url}/admin#/policies`);
    await page.getByRole('button', { name: 'Check draft' }).waitFor();
    expect(await page.getByRole('button', { name: 'Publish draft' }).count()).toBe(0);
    await page.goto(`${w.t.url}/admin#/agents/agent`);
    await page.getByRole('heading', { name: 'Registration' }).waitFor();
    expect(await page.getByRole('button', { name: /Revoke/ }).count()).toBe(0);

    // The API is the authority: the same actions, called directly with the reviewer's credential, are refused.
    for (const [method, p, body] of [
      ['POST', '/admin/api/clients', { client_id: 'sneaky' }],
      ['DELETE', '/admin/api/clients/agent', undefined],
      ['POST', '/admin/api/policies', { document: 'version: 1\nrules: []\n' }],
      ['POST', '/admin/api/revocations', { client_id: 'agent' }],
      ['POST', '/admin/api/admins', { name: 'me too', role: 'admin' }],
      ['POST', '/admin/api/clients/agent/secret', {}],
    ] as const) {
      const r = await w.t.admin(method, p, body, rita);
      expect(r.status, `${method} ${p}`).toBe(403);
    }
    expect(problemsOf(page)).toEqual([]);
  }, 60_000);

  it('shows hostile strings from a real exchange as inert text, with hidden characters made visible', async () => {
    const script = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">';
    const long = `${script} javascript:alert(1) ${'A'.repeat(10_000 - script.length - 22)}`;
    expect([...long].length).toBeLessThanOrEqual(10_000);
    const bidi = 'Alice \u202Egnp.exe\u202C \u200B';
    const res = await w.exchange('agent', exchangeParams(await w.userToken({ sub: 'mallory', name: bidi, website: 'javascript:alert(document.domain)' }), {
      scope: 'expenses:approve', intent: long,
      authorization_details: JSON.stringify([{ type: 'tool_call', action: 'approve', tool: '<svg onload=alert(1)>', object: { type: 'Expense', id: 'javascript:alert(1)', amount: 9000, owner: '<b onmouseover=alert(1)>x</b>' } }]),
    }));
    const pending = await res.json() as { error: string; review_id: string };
    expect(pending.error).toBe('authorization_pending');
    // The edge refuses invisible characters in the intent itself.
    const refused = await w.exchange('agent', exchangeParams(await w.userToken({ sub: 'mallory' }), { intent: `pay ${bidi}` }));
    expect(refused.status).toBe(400);

    const page = await newPage();
    await signIn(page, w.t.url, rita);
    await page.goto(`${w.t.url}/admin#/reviews`);
    const card = page.locator(`article[data-review="${pending.review_id}"]`);
    await card.waitFor();
    const intent = card.locator('dd.intent');
    expect(await intent.textContent()).toContain('<script>window.__pwned = 1</script>');
    await card.scrollIntoViewIfNeeded();
    await screenshot(page, 'reviews-hostile');
    await intent.getByRole('button', { name: /^Show all \d+ characters$/ }).click();
    expect(await intent.textContent()).toBe(long);
    expect(await card.textContent()).toContain('javascript:alert(1)');
    expect(await card.textContent()).toContain('<b onmouseover=alert(1)>x</b>');

    // The same values in the ledger entry, with the user's claims: the bidi override is shown as a marker.
    const denials = ((await (await w.t.admin('GET', '/admin/api/ledger?kind=exchange.denied&client_id=agent&limit=20')).json()) as { items: Array<{ seq: number; payload: unknown }> }).items;
    const entry = denials.find((e) => JSON.stringify(e.payload).includes('gnp.exe') && JSON.stringify(e.payload).includes('authorization_pending'));
    expect(entry).toBeDefined();
    await page.goto(`${w.t.url}/admin#/ledger/${entry!.seq}`);
    const payload = page.locator('pre.json');
    await payload.waitFor();
    const shown = (await payload.textContent())!;
    expect(shown).toContain('Alice ⟦U+202E⟧gnp.exe⟦U+202C⟧ ⟦U+200B⟧');
    expect(shown).not.toMatch(/[\u202A-\u202E\u2066-\u2069\u200B]/);
    await page.locator('mark.invisible').first().scrollIntoViewIfNeeded();
    await screenshot(page, 'ledger-hidden-characters');

    for (const p of [page]) {
      expect(await p.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
      expect(await p.locator('script').count()).toBe(1); // the console's own module only
      expect(await p.locator('img').count()).toBe(0);
      expect(await p.locator('[onerror], [onmouseover], b').count()).toBe(0);
      expect(await p.evaluate(() => [...document.querySelectorAll('a')].map((a) => a.getAttribute('href')).filter((h) => !h?.startsWith('#')))).toEqual([]);
    }
    // Long strings wrap instead of widening the page, on a phone too.
    await page.setViewportSize(PHONE);
    await page.goto(`${w.t.url}/admin#/reviews`);
    await card.waitFor();
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1)).toBe(true);
    await screenshot(page, 'phone-reviews');
    expect(problemsOf(page)).toEqual([]);
  }, 60_000);

  it('passes the axe-core accessibility check on every page, on a laptop and on a phone, without overflowing the phone', async () => {
    const task = ((await (await w.t.admin('GET', '/admin/api/ledger?kind=exchange.granted&limit=1')).json()) as { items: Array<{ payload: { task: string } }> }).items[0]!.payload.task;
    const pages = ['overview', 'reviews', 'tasks', `tasks/${encodeURIComponent(task)}`, 'agents', 'agents/agent', 'registry/clients', 'registry/resources', 'registry/issuers', 'registry/admins', 'policies', 'ledger', 'ledger/1'];
    for (const viewport of [LAPTOP, PHONE]) {
      const page = await newPage(viewport);
      await page.goto(`${w.t.url}/admin`);
      await page.getByLabel('Admin credential').waitFor();
      expect(await axeViolations(page), `sign-in at ${viewport.width}px`).toEqual([]);
      await signIn(page, w.t.url, w.t.adminToken);
      for (const p of pages) {
        await page.goto(`${w.t.url}/admin#/${p}`);
        await page.locator('main h1').waitFor();
        await page.waitForFunction(() => !document.querySelector('main')?.textContent?.startsWith('Loading'));
        expect(await axeViolations(page), `#/${p} at ${viewport.width}px`).toEqual([]);
        if (viewport === PHONE) expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1), `#/${p} overflows a phone`).toBe(true);
        if (viewport === LAPTOP && (p === 'overview' || p.startsWith('tasks/') || p === 'agents/agent')) await screenshot(page, p.startsWith('tasks/') ? 'task' : p.replace('/', '-'));
      }
      expect(problemsOf(page)).toEqual([]);
    }
  }, 180_000);
});
