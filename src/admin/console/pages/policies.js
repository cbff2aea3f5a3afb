// @ts-check
// Policies: the versions, an editor whose validation errors point at their line, a simulation of one
// request against the draft, a replay of recorded decisions under the draft (the ones that would
// change, in a table), and publishing.
import { api, ApiError, can } from '../api.js';
import { announce, confirmDialog, errorBox, field, h, jsonView, replace, reveal, table, when } from '../dom.js';

/**
 * A textarea with a line-number gutter that can mark one line.
 * @param {string} text
 */
function editor(text) {
  const area = h('textarea', { rows: 24, class: 'mono code', spellcheck: 'false', wrap: 'off', name: 'document', 'aria-describedby': 'editor-error' });
  area.value = text;
  const gutter = h('pre', { class: 'gutter mono', 'aria-hidden': 'true' });
  /** @type {number | null} */
  let marked = null;
  const draw = () => {
    const n = area.value.split('\n').length;
    replace(gutter, Array.from({ length: n }, (_, i) => h('span', { class: i + 1 === marked ? 'err-line' : null }, `${i + 1}\n`)));
  };
  area.addEventListener('input', () => { marked = null; draw(); });
  area.addEventListener('scroll', () => { gutter.scrollTop = area.scrollTop; });
  draw();
  return {
    area,
    el: h('div', { class: 'editor' }, gutter, area),
    /** @param {number | null} line */
    mark(line) {
      marked = line;
      draw();
    },
    /** @param {number} line */
    goTo(line) {
      const lines = area.value.split('\n');
      const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
      area.focus();
      area.setSelectionRange(start, start + (lines[line - 1]?.length ?? 0));
      const lineHeight = area.scrollHeight / Math.max(lines.length, 1);
      area.scrollTop = Math.max(0, (line - 3) * lineHeight);
    },
  };
}

/** @type {import('../app.js').Page} */
export async function policiesPage(main, me) {
  const versions = await api('GET', '/admin/api/policies');
  const current = await api('GET', '/admin/api/policies/current');
  const ed = editor(current.document);
  const problem = h('div', { id: 'editor-error', 'aria-live': 'polite' });

  /** Shows a validation error at its line; true when the draft is valid. @param {any} err */
  const showProblem = (err) => {
    const line = err?.line ?? null;
    ed.mark(line);
    if (!err) {
      replace(problem, h('p', { class: 'ok-note' }, 'The draft is valid.'));
      return;
    }
    const go = h('button', { type: 'button', class: 'link' }, `Go to line ${line}`);
    go.addEventListener('click', () => ed.goTo(line));
    replace(problem, h('div', { class: 'error', role: 'alert' }, line ? h('strong', null, `Line ${line}${err.column ? `, column ${err.column}` : ''}: `) : null, reveal(err.message ?? err.error_description), line ? [' ', go] : null));
  };
  const check = async () => {
    const r = await api('POST', '/admin/api/policies/validate', { document: ed.area.value });
    showProblem(r.valid ? null : r.error);
    return r.valid;
  };
  /** An API error about the document is shown in the editor, anything else where it happened. @param {unknown} err @param {HTMLElement} where */
  const fail = (err, where) => {
    if (err instanceof ApiError && err.body?.field?.startsWith('document')) showProblem(err.body);
    else replace(where, errorBox(err));
  };

  // Simulate
  const simClient = h('input', { name: 'client_id', required: true, maxlength: 128 });
  const simIss = h('input', { name: 'issuer', required: true, maxlength: 2000 });
  const simSub = h('input', { name: 'sub', required: true, maxlength: 1000 });
  const simResource = h('input', { name: 'resource', required: true, maxlength: 2000 });
  const simScope = h('input', { name: 'scope', maxlength: 4000 });
  const simDetails = h('textarea', { name: 'authorization_details', rows: 3, class: 'mono', spellcheck: 'false' });
  const simOut = h('div', { 'aria-live': 'polite' });
  const simForm = h('form', { class: 'card', 'aria-labelledby': 'sim-title' }, h('h2', { id: 'sim-title' }, 'Simulate a request against the draft'),
    h('div', { class: 'grid' }, field('Agent (client id)', simClient), field('User issuer', simIss), field('User sub', simSub), field('Resource', simResource), field('Scope', simScope)),
    field('Authorization details (JSON array, optional)', simDetails),
    h('button', { type: 'submit' }, 'Simulate'), simOut);
  simForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    /** @type {any} */
    const body = { document: ed.area.value, client_id: simClient.value, user: { issuer: simIss.value, sub: simSub.value }, resource: simResource.value };
    if (simScope.value.trim()) body.scope = simScope.value.trim();
    if (simDetails.value.trim()) {
      try {
        body.authorization_details = JSON.parse(simDetails.value);
      } catch {
        replace(simOut, h('p', { class: 'error', role: 'alert' }, 'Authorization details are not valid JSON.'));
        return;
      }
    }
    try {
      const r = await api('POST', '/admin/api/policies/simulate', body);
      const d = r.decision;
      replace(simOut, h('div', { class: 'result' },
        h('p', null, h('strong', null, 'Outcome: '), h('span', { class: `badge ${d.outcome === 'allow' ? 'ok' : d.outcome === 'deny' ? 'bad' : 'warn'}` }, d.outcome)),
        h('p', null, reveal(r.explanation)),
        h('dl', { class: 'facts' }, h('dt', null, 'Granted scopes'), h('dd', null, reveal(d.granted_scopes.join(' ') || '—')),
          h('dt', null, 'Matched rules'), h('dd', null, reveal(d.matched_rules.join(', ') || '—')),
          h('dt', null, 'Reasons'), h('dd', null, reveal(d.reasons.join(', ') || '—')),
          h('dt', null, 'TTL'), h('dd', null, d.ttl === null ? '—' : `${d.ttl} s`))));
      announce(`Simulation: ${d.outcome}`);
    } catch (err) {
      fail(err, simOut);
    }
  });

  // Replay
  const since = h('input', { name: 'since', value: '7d', maxlength: 64 });
  const replayOut = h('div', { 'aria-live': 'polite' });
  const replayForm = h('form', { class: 'card', 'aria-labelledby': 'replay-title' }, h('h2', { id: 'replay-title' }, 'Replay recorded decisions under the draft'),
    field('Since', since, '7d, 12h, 30m or an ISO 8601 date-time'), h('button', { type: 'submit' }, 'Replay'), replayOut);
  replayForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    replace(replayOut, h('p', null, 'Replaying…'));
    try {
      const r = await api('POST', '/admin/api/policies/replay', { document: ed.area.value, since: since.value.trim() || undefined });
      replace(replayOut,
        h('p', { class: 'summary' }, `${r.examined} decisions examined: ${r.changed.length} would change, ${r.unchanged} unchanged, ${r.skipped} skipped (no recorded context).`),
        table('Decisions that would change', ['Entry', 'When', 'Agent', 'User', 'Recorded', 'Under the draft', 'Reasons now'], r.changed.map((/** @type {any} */ c) => [
          h('a', { href: `#/ledger/${c.seq}` }, String(c.seq)), when(c.at), reveal(c.client_id), reveal(c.user?.sub ?? ''),
          [h('span', { class: `badge ${c.original.decision === 'granted' ? 'ok' : 'bad'}` }, c.original.decision), ' ', reveal(c.original.granted_scope.join(' '))],
          [h('span', { class: `badge ${c.replayed.decision === 'granted' ? 'ok' : 'bad'}` }, c.replayed.decision), ' ', reveal(c.replayed.granted_scope.join(' '))],
          reveal(c.replayed.reasons.join(', ')),
        ]), 'No recorded decision would change.'));
      announce(`Replay: ${r.changed.length} decisions would change`);
    } catch (err) {
      fail(err, replayOut);
    }
  });

  const checkBtn = h('button', { type: 'button' }, 'Check draft');
  checkBtn.addEventListener('click', () => void check().catch((err) => fail(err, problem)));
  const source = h('input', { name: 'source', maxlength: 200, value: 'admin console' });
  const publishOut = h('div', { 'aria-live': 'polite' });
  /** @type {HTMLElement | null} */
  let publish = null;
  if (can(me, 'change')) {
    const btn = h('button', { type: 'button', class: 'primary' }, 'Publish draft');
    btn.addEventListener('click', async () => {
      try {
        if (!(await check())) return;
        const ok = await confirmDialog('Publish this draft?', h('p', null, `It becomes the next version (after ${current.version}) and decides every exchange from now on, on every server sharing this database.`), 'Publish');
        if (!ok) return;
        const v = await api('POST', '/admin/api/policies', { document: ed.area.value, source: source.value.trim() || 'admin console' });
        announce(`Policy version ${v.version} published`);
        await policiesPage(main, me, []);
        const out = main.querySelector('#publish-out');
        if (out) replace(/** @type {HTMLElement} */ (out), h('p', { class: 'ok-note', role: 'status' }, `Version ${v.version} published.`));
      } catch (err) {
        fail(err, publishOut);
      }
    });
    publish = h('div', { class: 'card' }, h('h2', null, 'Publish'), field('Source (recorded with the version)', source), btn);
  }
  publishOut.id = 'publish-out';

  replace(main,
    h('h1', null, 'Policies'),
    h('p', null, `In force: version ${current.version}, published ${when(current.created_at)} by `, reveal(current.created_by), '.'),
    publishOut,
    h('h2', null, 'Draft'),
    h('div', { class: 'actions' }, checkBtn),
    problem,
    h('label', { for: 'policy-editor', class: 'visually-hidden' }, 'Policy document (YAML)'),
    ed.el,
    simForm, replayForm, publish,
    h('h2', null, 'Versions'),
    table('Published versions, newest first', ['Version', 'Source', 'Published', 'By', ''], versions.items.map((/** @type {any} */ v) => {
      const load = h('button', { type: 'button', class: 'small' }, 'Load into editor');
      load.setAttribute('aria-label', `Load into editor: version ${v.version}`);
      load.addEventListener('click', async () => {
        const full = await api('GET', `/admin/api/policies/${v.version}`);
        ed.area.value = full.document;
        ed.mark(null);
        replace(problem);
        ed.area.focus();
      });
      return [String(v.version), reveal(v.source), when(v.created_at), reveal(v.created_by), load];
    })),
    h('details', null, h('summary', null, 'Current version as JSON'), jsonView({ version: current.version, source: current.source })));
  ed.area.id = 'policy-editor';
}
