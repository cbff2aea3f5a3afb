// @ts-check
// The console's shell: sign in, the navigation a role may use, and a hash router (`#/reviews`), so the
// server serves one page and every view is a module here.
import { api, ApiError, credential, whenUnauthorized } from './api.js';
import { announce, errorBox, field, h, replace } from './dom.js';
import { overviewPage } from './pages/overview.js';
import { reviewsPage } from './pages/reviews.js';
import { taskPage, tasksPage } from './pages/tasks.js';
import { agentPage, agentsPage } from './pages/agents.js';
import { registryPage } from './pages/registry.js';
import { policiesPage } from './pages/policies.js';
import { ledgerEntryPage, ledgerPage } from './pages/ledger.js';

/** @typedef {import('./api.js').Me} Me */
/** @typedef {(main: HTMLElement, me: Me, params: string[]) => Promise<(() => void) | void>} Page */
/** @typedef {{ pattern: RegExp; page: Page; title: string; roles?: Array<Me['role']>; nav?: string }} Route */

/** @type {Route[]} */
const ROUTES = [
  { pattern: /^\/overview$/, page: overviewPage, title: 'Overview', nav: '#/overview' },
  { pattern: /^\/reviews$/, page: reviewsPage, title: 'Review queue', nav: '#/reviews' },
  { pattern: /^\/tasks$/, page: tasksPage, title: 'Tasks', nav: '#/tasks' },
  { pattern: /^\/tasks\/([^/]+)$/, page: taskPage, title: 'Task' },
  { pattern: /^\/agents$/, page: agentsPage, title: 'Agents', nav: '#/agents' },
  { pattern: /^\/agents\/([^/]+)$/, page: agentPage, title: 'Agent' },
  { pattern: /^\/registry\/(clients|resources|issuers)$/, page: registryPage, title: 'Registry', nav: '#/registry/clients' },
  { pattern: /^\/registry\/(admins)$/, page: registryPage, title: 'Admin credentials', roles: ['admin'], nav: '#/registry/admins' },
  { pattern: /^\/policies$/, page: policiesPage, title: 'Policies', nav: '#/policies' },
  { pattern: /^\/ledger$/, page: ledgerPage, title: 'Ledger', nav: '#/ledger' },
  { pattern: /^\/ledger\/(\d{1,15})$/, page: ledgerEntryPage, title: 'Ledger entry' },
];

const NAV_LABELS = /** @type {Record<string, string>} */ ({
  '#/overview': 'Overview', '#/reviews': 'Reviews', '#/tasks': 'Tasks', '#/agents': 'Agents',
  '#/registry/clients': 'Registry', '#/registry/admins': 'Admins', '#/policies': 'Policies', '#/ledger': 'Ledger',
});

/** @type {Me | null} */
let me = null;
/** @type {(() => void) | void} */
let cleanup;
let routed = 0;

const main = /** @type {HTMLElement} */ (document.getElementById('main'));
const nav = /** @type {HTMLElement} */ (document.getElementById('nav'));
const who = /** @type {HTMLElement} */ (document.getElementById('who'));

function signOut(message = 'Signed out. The credential was forgotten by this tab.') {
  credential.forget();
  me = null;
  routed++;
  if (cleanup) cleanup();
  cleanup = undefined;
  showSignIn(message);
}

whenUnauthorized(() => {
  if (me) signOut('The server no longer accepts this credential (revoked or mistyped). Sign in again.');
});

/** @param {string} [message] */
function showSignIn(message) {
  replace(nav);
  replace(who);
  document.title = 'Sign in · intentgate admin';
  const input = h('input', { type: 'password', name: 'credential', autocomplete: 'off', spellcheck: 'false', required: true });
  const status = h('div', { 'aria-live': 'polite' }, message ? h('p', { class: 'note' }, message) : null);
  const form = h('form', { class: 'card signin', 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title' }, 'Sign in'),
    h('p', null, 'Paste an admin credential (admin, reviewer or auditor). It is kept for this tab only and sent to this server alone.'),
    field('Admin credential', input),
    h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
    status);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    credential.set(input.value.trim());
    try {
      me = /** @type {Me} */ (await api('GET', '/admin/api/whoami'));
      input.value = '';
      if (!location.hash || location.hash === '#/') location.hash = '#/overview';
      else await route();
      announce(`Signed in as ${me.name}, role ${me.role}`);
    } catch (err) {
      credential.forget();
      replace(status, err instanceof ApiError && err.status === 401 ? h('p', { class: 'error', role: 'alert' }, 'That credential was not accepted.') : errorBox(err));
    }
  });
  replace(main, form);
  input.focus();
}

function renderChrome() {
  if (!me) return;
  const current = location.hash || '#/overview';
  const links = ROUTES.filter((r) => r.nav && (!r.roles || r.roles.includes(me?.role ?? 'auditor')))
    .map((r) => {
      const href = /** @type {string} */ (r.nav);
      const active = current === href || (href.startsWith('#/registry/clients') && /^#\/registry\/(clients|resources|issuers)/.test(current)) || current.startsWith(`${href}/`);
      return h('li', null, h('a', { href, 'aria-current': active ? 'page' : null }, NAV_LABELS[href] ?? href));
    });
  replace(nav, h('ul', null, links));
  const signOutButton = h('button', { type: 'button', class: 'link' }, 'Sign out');
  signOutButton.addEventListener('click', () => signOut());
  replace(who, h('span', { class: 'me' }, me.name, ' · ', h('strong', null, me.role)), ' ', signOutButton);
}

async function route() {
  const generation = ++routed;
  if (!me) return;
  if (cleanup) cleanup();
  cleanup = undefined;
  const path = (location.hash || '#/overview').slice(1);
  renderChrome();
  const found = ROUTES.map((r) => ({ r, m: r.pattern.exec(path) })).find((x) => x.m);
  if (!found) {
    document.title = 'Not found · intentgate admin';
    replace(main, h('h1', null, 'Not found'), h('p', null, 'No such page. ', h('a', { href: '#/overview' }, 'Go to the overview')));
    return;
  }
  const { r, m } = found;
  document.title = `${r.title} · intentgate admin`;
  if (r.roles && !r.roles.includes(me.role)) {
    replace(main, h('h1', null, r.title), h('p', { class: 'error', role: 'alert' }, `Your role (${me.role}) cannot open this page. It takes ${r.roles.join(' or ')}.`));
    return;
  }
  // Each view renders into an element of its own: a slower, older view that finishes late writes into
  // a detached element instead of over the current one, and its polling is stopped at once.
  const view = h('div', { class: 'view' }, h('p', null, 'Loading…'));
  replace(main, view);
  const params = (m ?? []).slice(1).map((p) => decodeURIComponent(p));
  try {
    const stop = await r.page(view, me, params);
    if (generation !== routed) {
      if (stop) stop();
      return;
    }
    cleanup = stop;
  } catch (err) {
    if (generation === routed) replace(view, h('h1', null, r.title), errorBox(err));
    return;
  }
  main.focus({ preventScroll: true });
}

async function start() {
  document.querySelector('.skip')?.addEventListener('click', (e) => {
    e.preventDefault();
    main.focus();
  });
  window.addEventListener('hashchange', () => void route());
  if (!credential.get()) return showSignIn();
  try {
    me = /** @type {Me} */ (await api('GET', '/admin/api/whoami'));
    await route();
  } catch {
    credential.forget();
    showSignIn('Sign in again.');
  }
}

void start();
