// @ts-check
// Agents (clients that may exchange tokens): the list, and one agent's registration, tasks, recent
// decisions, denials and behaviour signals, with a revoke-everything button.
import { api, ApiError, can, query } from '../api.js';
import { announce, confirmDialog, errorBox, h, jsonView, replace, reveal, table, when } from '../dom.js';
import { revoke, statusBadge, taskLink } from './tasks.js';

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';

/** @type {import('../app.js').Page} */
export async function agentsPage(main) {
  const page = await api('GET', `/admin/api/clients${query({ grant_type: TOKEN_EXCHANGE, limit: 200 })}`);
  replace(main, h('h1', null, 'Agents'), h('p', null, 'Clients allowed to exchange tokens.'),
    table('Agents', ['Agent', 'Name', 'Scope', 'Registered'], page.items.map((/** @type {any} */ c) => [
      h('a', { href: `#/agents/${encodeURIComponent(c.client_id)}` }, reveal(c.client_id)), reveal(c.client_name ?? ''), reveal(c.scope, { limit: 120 }), when(c.created_at),
    ]), 'No agent is registered.'));
}

/** @param {any} e */
function decisionRow(e) {
  return [h('a', { href: `#/ledger/${e.seq}` }, String(e.seq)), when(e.at), reveal(e.kind), reveal(e.payload?.audience ?? e.payload?.resource ?? ''),
    reveal([e.payload?.granted_scope ?? []].flat().join(' ')), reveal([e.payload?.reasons ?? []].flat().join(', ')),
    e.payload?.task ? taskLink(e.payload.task) : ''];
}

/** @type {import('../app.js').Page} */
export async function agentPage(main, me, [clientId]) {
  const id = /** @type {string} */ (clientId);
  const client = await api('GET', `/admin/api/clients/${encodeURIComponent(id)}`);
  const [decisions, denials, signals] = await Promise.all([
    api('GET', `/admin/api/ledger${query({ client_id: id, limit: 20 })}`),
    api('GET', `/admin/api/ledger${query({ client_id: id, kind: 'exchange.denied', limit: 20 })}`),
    Promise.all(['review.opened', 'task.downgraded'].map((kind) => api('GET', `/admin/api/ledger${query({ client_id: id, kind, limit: 10 })}`).then((p) => p.items, () => []))),
  ]);
  /** @type {HTMLElement} */
  let tasks;
  try {
    const list = await api('GET', `/admin/api/tasks${query({ agent: id, limit: 20 })}`);
    tasks = table(`Tasks of ${id}`, ['Task', 'User', 'Intent', 'Status', 'Created'], list.items.map((/** @type {any} */ t) => [
      taskLink(t.task), reveal(t.user?.sub), reveal(t.intent, { limit: 120 }), statusBadge(t.status), when(t.created_at)]), 'No task.');
  } catch (err) {
    if (!(err instanceof ApiError && err.missingRoute)) throw err;
    // Without a task list, the tasks this agent's recent decisions belong to.
    const ids = [...new Set(decisions.items.map((/** @type {any} */ e) => e.payload?.task).filter(Boolean))];
    tasks = ids.length ? h('ul', null, ids.map((t) => h('li', null, taskLink(/** @type {string} */ (t))))) : h('p', { class: 'empty' }, 'No task in the recent decisions.');
  }
  const status = h('div', { 'aria-live': 'polite' });
  const actions = [];
  if (can(me, 'change')) {
    const btn = h('button', { type: 'button', class: 'danger' }, 'Revoke all tokens of this agent');
    btn.addEventListener('click', async () => {
      const ok = await confirmDialog(`Revoke every token of ${id}?`, h('p', null, 'Every live token issued to ', reveal(id), ', and every token derived from them, is revoked. The agent stays registered and may ask again.'), 'Revoke all');
      if (!ok) return;
      try {
        const r = await revoke({ client_id: id }, 'revoked from the admin console');
        replace(status, h('p', { class: 'note' }, `${r?.revoked ?? 0} token(s) revoked.`));
        announce('Agent tokens revoked');
      } catch (err) {
        replace(status, errorBox(err));
      }
    });
    actions.push(btn);
  }
  const headers = ['Seq', 'When', 'Kind', 'Audience', 'Granted scope', 'Reasons', 'Task'];
  replace(main,
    h('p', null, h('a', { href: '#/agents' }, '← Agents')),
    h('h1', null, 'Agent ', reveal(id)),
    actions.length ? h('div', { class: 'actions' }, actions) : null, status,
    h('h2', null, 'Registration'), jsonView(client),
    h('h2', null, 'Tasks'), tasks,
    h('h2', null, 'Recent decisions'), table('Recent ledger entries of this agent', headers, decisions.items.map(decisionRow), 'No decision recorded.'),
    h('h2', null, 'Denials'), table('Recent denials', headers, denials.items.map(decisionRow), 'No denial recorded.'),
    h('h2', null, 'Behaviour signals'), table('Suspensions, downgrades and reviews', headers, signals.flat().sort((a, b) => b.seq - a.seq).map(decisionRow), 'No behaviour signal.'));
}
