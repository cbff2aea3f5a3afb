// @ts-check
// Tasks: a search (by agent, user or status, when the server lists tasks; by task id always), and one
// task's page: its tokens as a tree, status, purpose, counters, evidence, ledger entries, and the
// suspend / resume / revoke actions, each confirmed with what exactly it will revoke.
import { api, ApiError, can, query } from '../api.js';
import { announce, confirmDialog, errorBox, field, h, jsonView, replace, reveal, table, when } from '../dom.js';

/** @param {string} status */
export function statusBadge(status) {
  const cls = status === 'active' ? 'ok' : status === 'suspended' || status === 'revoked' ? 'bad' : 'warn';
  return h('span', { class: `badge ${cls}` }, reveal(status));
}

/** @param {string} task */
export function taskLink(task) {
  return h('a', { href: `#/tasks/${encodeURIComponent(task)}`, class: 'mono' }, reveal(task));
}

function idSearch() {
  const input = h('input', { name: 'task', required: true, maxlength: 128, autocomplete: 'off' });
  const form = h('form', { class: 'inline', role: 'search', 'aria-label': 'Open a task by id' }, field('Task id', input), h('button', { type: 'submit' }, 'Open task'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (input.value.trim()) location.hash = `#/tasks/${encodeURIComponent(input.value.trim())}`;
  });
  return form;
}

/** @type {import('../app.js').Page} */
export async function tasksPage(main) {
  const results = h('div');
  const agent = h('input', { name: 'agent', maxlength: 128 });
  const iss = h('input', { name: 'user_iss', maxlength: 2000 });
  const sub = h('input', { name: 'user_sub', maxlength: 1000 });
  const status = h('select', { name: 'status' }, ['', 'active', 'suspended', 'downgraded', 'revoked'].map((s) => h('option', { value: s }, s || 'any')));
  const filters = h('form', { class: 'filters', role: 'search', 'aria-label': 'Search tasks' },
    field('Agent (client id)', agent), field('User issuer', iss), field('User sub', sub), field('Status', status), h('button', { type: 'submit' }, 'Search'));
  const search = async () => {
    try {
      const page = await api('GET', `/admin/api/tasks${query({ agent: agent.value, user_iss: iss.value, user_sub: sub.value, status: status.value, limit: 50 })}`);
      replace(results, table('Tasks', ['Task', 'Agent', 'User', 'Intent', 'Status', 'Created', 'Expires'], page.items.map((/** @type {any} */ t) => [
        taskLink(t.task), reveal(t.agent), [reveal(t.user?.sub), h('span', { class: 'hint' }, ' at ', reveal(t.user?.iss))], reveal(t.intent, { limit: 120 }), statusBadge(t.status), when(t.created_at), when(t.expires_at),
      ]), 'No task matches.'));
      return true;
    } catch (err) {
      if (err instanceof ApiError && err.missingRoute) return false;
      replace(results, errorBox(err));
      return true;
    }
  };
  filters.addEventListener('submit', (e) => { e.preventDefault(); void search(); });
  replace(main, h('h1', null, 'Tasks'), idSearch(), filters, results);
  if (!(await search())) {
    // This server cannot list tasks: only the search by id is offered.
    filters.remove();
    replace(results, h('p', { class: 'note' }, 'This server does not list tasks; open one by its id (from a review, a ledger entry or an agent page).'));
  }
}

/**
 * Tokens as a tree by parent_jti (a token whose parent is not in the task is a root).
 * @param {any[]} tokens
 * @param {import('../api.js').Me} me
 * @param {(t: any) => void} revoke
 */
function tokenTree(tokens, me, revoke) {
  const byParent = new Map();
  const jtis = new Set(tokens.map((t) => t.jti));
  for (const t of tokens) {
    const p = t.parent_jti && jtis.has(t.parent_jti) ? t.parent_jti : null;
    byParent.set(p, [...(byParent.get(p) ?? []), t]);
  }
  /** @param {string | null} parent @returns {HTMLElement | null} */
  const level = (parent) => {
    const kids = byParent.get(parent);
    if (!kids) return null;
    return h('ul', { class: parent ? 'tree' : 'tree root' }, kids.map((/** @type {any} */ t) => {
      const btn = t.status === 'active' && can(me, 'change') ? h('button', { type: 'button', class: 'small danger' }, 'Revoke token') : null;
      btn?.addEventListener('click', () => revoke(t));
      return h('li', null,
        h('div', { class: 'token' },
          h('span', { class: 'mono' }, reveal(t.jti)), ' ', statusBadge(t.status), ' ',
          t.kind ? h('span', { class: 'badge' }, reveal(t.kind)) : null, ' ',
          h('span', null, reveal(t.client_id), ' → ', reveal(t.audience)), ' ',
          h('span', { class: 'hint' }, 'scope ', reveal(Array.isArray(t.scope) ? t.scope.join(' ') : t.scope), '; until ', when(t.expires_at)), ' ', btn),
        level(t.jti));
    }));
  };
  return level(null) ?? h('p', { class: 'empty' }, 'No tokens were issued in this task.');
}

/**
 * Revocation through the task route when the server has it, else the generic revocations endpoint.
 * @param {{ task?: string; jti?: string; client_id?: string; user?: { issuer: string; sub: string } }} target
 * @param {string} reason
 */
export async function revoke(target, reason) {
  if (target.task) {
    try {
      return await api('POST', `/admin/api/tasks/${encodeURIComponent(target.task)}/revoke`, { reason });
    } catch (err) {
      if (!(err instanceof ApiError && err.missingRoute)) throw err;
    }
  }
  return api('POST', '/admin/api/revocations', { ...target, reason });
}

/** @type {import('../app.js').Page} */
export async function taskPage(main, me, [task]) {
  const id = /** @type {string} */ (task);
  const t = await api('GET', `/admin/api/tasks/${encodeURIComponent(id)}`);
  const ledger = await api('GET', `/admin/api/ledger${query({ task: id, limit: 50 })}`).catch(() => ({ items: [] }));
  // The first decision of the task names its agent, user and intent when the task view does not.
  const first = [...ledger.items].reverse().find((/** @type {any} */ e) => e.kind === 'exchange.granted') ?? null;
  const agent = t.agent ?? first?.payload?.client_id;
  const found = t.user ?? first?.payload?.user;
  // The task view names the user {iss, sub}; ledger payloads {issuer, sub}.
  const user = found ? { issuer: found.issuer ?? found.iss, sub: found.sub } : undefined;
  const intent = t.intent ?? first?.payload?.intent;
  const live = (t.tokens ?? []).filter((/** @type {any} */ x) => x.status === 'active');
  const status = h('div', { 'aria-live': 'polite' });
  const reload = () => { void taskPage(main, me, [id]).catch((err) => replace(status, errorBox(err))); };

  /** @param {string} title @param {HTMLElement} body @param {string} label @param {() => Promise<any>} act @param {string} done */
  const confirmed = async (title, body, label, act, done) => {
    if (!(await confirmDialog(title, body, label))) return;
    try {
      const result = await act();
      announce(done);
      reload();
      return result;
    } catch (err) {
      replace(status, errorBox(err));
    }
  };
  const jtiList = (/** @type {any[]} */ list) => list.length
    ? h('ul', { class: 'mono small' }, list.slice(0, 20).map((x) => h('li', null, reveal(x.jti), ' (', reveal(x.client_id), ' → ', reveal(x.audience), ')')), list.length > 20 ? h('li', null, `and ${list.length - 20} more`) : null)
    : h('p', null, 'No token of this task is live now; the task itself is marked revoked so none can be derived.');

  const actions = [];
  if (can(me, 'change')) {
    const revokeTask = h('button', { type: 'button', class: 'danger' }, 'Revoke task');
    revokeTask.addEventListener('click', () => void confirmed(`Revoke task ${id}?`,
      h('div', null, h('p', null, `This revokes the task and its ${live.length} live token${live.length === 1 ? '' : 's'}, and everything derived from them. Agents holding them are refused at once. This cannot be undone.`), jtiList(live)),
      'Revoke task', () => revoke({ task: id }, 'revoked from the admin console'), `Task ${id} revoked`));
    actions.push(revokeTask);
    // Suspend and resume are task routes of servers whose task view names its agent; older ones have neither.
    const managed = 'agent' in t;
    if (managed && t.status === 'suspended') {
      const resume = h('button', { type: 'button' }, 'Resume task');
      resume.addEventListener('click', () => void confirmed(`Resume task ${id}?`, h('p', null, 'New exchanges in this task will be decided again. Tokens already revoked stay revoked.'), 'Resume',
        () => api('POST', `/admin/api/tasks/${encodeURIComponent(id)}/resume`, {}), `Task ${id} resumed`));
      actions.push(resume);
    } else if (managed && t.status !== 'revoked') {
      const suspend = h('button', { type: 'button' }, 'Suspend task');
      suspend.addEventListener('click', () => void confirmed(`Suspend task ${id}?`,
        h('div', null, h('p', null, `Suspending revokes the task's ${live.length} live token${live.length === 1 ? '' : 's'} and refuses its new exchanges until it is resumed.`), jtiList(live)), 'Suspend',
        () => api('POST', `/admin/api/tasks/${encodeURIComponent(id)}/suspend`, {}), `Task ${id} suspended`));
      actions.push(suspend);
    }
    if (user?.issuer && user?.sub) {
      const revokeUser = h('button', { type: 'button', class: 'danger' }, 'Revoke all of this user');
      revokeUser.addEventListener('click', () => void confirmed('Revoke every token of this user?',
        h('p', null, 'Every live token issued on behalf of ', reveal(user.sub), ' at ', reveal(user.issuer), ', in every task and for every agent, is revoked.'), 'Revoke all of this user',
        () => revoke({ user: { issuer: user.issuer, sub: user.sub } }, 'revoked from the admin console'), 'User\'s tokens revoked'));
      actions.push(revokeUser);
    }
  }

  const revokeToken = (/** @type {any} */ tok) => void confirmed(`Revoke token ${tok.jti}?`,
    h('p', null, 'This token and every token derived from it are revoked.'), 'Revoke token', () => revoke({ jti: tok.jti }, 'revoked from the admin console'), `Token ${tok.jti} revoked`);

  replace(main,
    h('p', null, h('a', { href: '#/tasks' }, '← Tasks')),
    h('h1', null, 'Task ', h('span', { class: 'mono' }, reveal(id))),
    h('dl', { class: 'facts' },
      h('dt', null, 'Status'), h('dd', null, statusBadge(t.status)),
      t.suspension ? [h('dt', null, t.status === 'suspended' ? 'Suspension' : 'Last suspension (lifted)'), h('dd', null, reveal(t.suspension.reason), t.suspension.review_id ? [' · review ', h('a', { href: '#/reviews' }, reveal(t.suspension.review_id))] : null)] : null,
      h('dt', null, 'Agent'), h('dd', null, agent ? h('a', { href: `#/agents/${encodeURIComponent(agent)}` }, reveal(agent)) : '—'),
      h('dt', null, 'User'), h('dd', null, user ? [reveal(user.sub), h('span', { class: 'hint' }, ' at ', reveal(user.issuer))] : '—'),
      h('dt', null, 'Intent'), h('dd', { class: 'intent' }, intent ? reveal(intent) : '—'),
      t.purpose ? [h('dt', null, 'Purpose'), h('dd', null, reveal(t.purpose))] : null,
      t.counters ? [h('dt', null, 'Counters'), h('dd', null, jsonView(t.counters))] : null,
      t.ceiling ? [h('dt', null, 'Ceiling'), h('dd', null, jsonView(t.ceiling))] : null),
    actions.length ? h('div', { class: 'actions' }, actions) : null,
    status,
    h('h2', null, 'Tokens'),
    tokenTree(t.tokens ?? [], me, revokeToken),
    t.evidence ? [h('h2', null, 'Evidence'), table('Evidence', ['Seq', 'Kind', 'When', 'Summary'], t.evidence.map((/** @type {any} */ e) => [h('a', { href: `#/ledger/${e.seq}` }, String(e.seq)), reveal(e.kind), when(e.created_at), reveal(e.summary)]))] : null,
    h('h2', null, 'Ledger entries'),
    table('Ledger entries of this task, newest first', ['Seq', 'When', 'Kind', 'Client', 'Decision'], ledger.items.map((/** @type {any} */ e) => [
      h('a', { href: `#/ledger/${e.seq}` }, String(e.seq)), when(e.at), reveal(e.kind), reveal(e.payload?.client_id ?? ''), reveal(e.payload?.decision ?? ''),
    ]), 'No ledger entry names this task.'));
}
