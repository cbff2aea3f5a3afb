// @ts-check
// The ledger: filtered entries, one entry with its payload and inclusion proof (checked here, in the
// browser, against the signed checkpoint's root), and a verification of the whole chain with progress.
import { api, ApiError, query, send } from '../api.js';
import { announce, errorBox, field, h, jsonView, replace, reveal, table, when } from '../dom.js';

const KINDS = ['', 'exchange.granted', 'exchange.denied', 'token.refused', 'review.opened', 'review.approved', 'review.denied', 'task.downgraded', 'token.revoked', 'resource.event', 'policy.published', 'client_auth.failed'];

/** @param {string} hex */
function bytes(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** @param {Uint8Array} a @param {Uint8Array} b */
async function nodeHash(a, b) {
  const buf = new Uint8Array(1 + a.length + b.length);
  buf[0] = 1;
  buf.set(a, 1);
  buf.set(b, 1 + a.length);
  return new Uint8Array(await crypto.subtle.digest('SHA-256', buf));
}

/**
 * RFC 9162 §2.1.3.2: does the audit path lead from the leaf at `index` to `root` in a tree of `size`?
 * @param {string} leafHex @param {number} index @param {number} size @param {string[]} proof @param {string} rootHex
 */
export async function verifyInclusion(leafHex, index, size, proof, rootHex) {
  if (index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r = bytes(leafHex);
  for (const hex of proof) {
    const p = bytes(hex);
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  const root = bytes(rootHex);
  return sn === 0 && r.length === root.length && r.every((x, i) => x === root[i]);
}

/** The verification of the whole chain, streamed by the server as NDJSON lines. */
function verifier() {
  const bar = h('progress', { max: 1, value: 0, 'aria-label': 'Verification progress' });
  const text = h('p', { 'aria-live': 'polite' });
  const result = h('div', { 'aria-live': 'polite' });
  const btn = h('button', { type: 'button', class: 'primary' }, 'Verify the ledger');
  btn.addEventListener('click', async () => {
    btn.disabled = true;
    replace(result);
    text.textContent = 'Starting…';
    try {
      const res = await send('POST', '/admin/api/ledger/verify', {}, 'application/x-ndjson');
      if (!res.ok || !res.body) throw new ApiError(res.status, await res.json().catch(() => null));
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffered = '';
      let total = 0;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffered += value;
        const lines = buffered.split('\n');
        buffered = lines.pop() ?? '';
        for (const line of lines.filter(Boolean)) {
          const msg = JSON.parse(line);
          if (msg.progress) {
            total = msg.progress.total;
            bar.max = Math.max(total, 1);
            bar.value = msg.progress.entries;
            text.textContent = `Checked ${msg.progress.entries} of ${total} entries…`;
          }
          if (msg.report) {
            const r = msg.report;
            bar.value = bar.max;
            text.textContent = `Checked ${r.entries} of ${total} entries.`;
            replace(result, r.ok
              ? h('p', { class: 'ok-note', role: 'status' }, `Verified: ${r.entries} entries, ${r.checkpoints} signed checkpoint${r.checkpoints === 1 ? '' : 's'} and ${r.anchors} anchored cop${r.anchors === 1 ? 'y' : 'ies'} intact. Head hash `, h('span', { class: 'mono' }, r.head_hash), '.')
              : h('p', { class: 'error', role: 'alert' }, `Verification failed at entry ${r.problem?.seq}: `, reveal(r.problem?.message)));
            announce(r.ok ? 'Ledger verified' : 'Ledger verification failed');
          }
          if (msg.error) replace(result, h('p', { class: 'error', role: 'alert' }, reveal(msg.error_description ?? msg.error)));
        }
      }
    } catch (err) {
      replace(result, errorBox(err));
    } finally {
      btn.disabled = false;
    }
  });
  return h('section', { class: 'card', 'aria-labelledby': 'verify-title' }, h('h2', { id: 'verify-title' }, 'Verify the chain'),
    h('p', null, 'Recomputes every entry\'s hash, the chain, each signed checkpoint\'s Merkle root and the anchored copies, on the server.'), btn, bar, text, result);
}

/** @type {import('../app.js').Page} */
export async function ledgerPage(main) {
  const kind = h('select', { name: 'kind' }, KINDS.map((k) => h('option', { value: k }, k || 'any')));
  const client = h('input', { name: 'client_id', maxlength: 128 });
  const subject = h('input', { name: 'subject', maxlength: 1000 });
  const task = h('input', { name: 'task', maxlength: 128 });
  const sinceInput = h('input', { name: 'since', type: 'datetime-local' });
  const untilInput = h('input', { name: 'until', type: 'datetime-local' });
  const results = h('div', { 'aria-live': 'polite' });
  /** @type {string | null} */
  let cursor = null;
  const more = h('button', { type: 'button' }, 'Older entries');
  /** @param {HTMLInputElement} i */
  const iso = (i) => (i.value ? new Date(i.value).toISOString() : undefined);
  /** @param {boolean} append */
  const load = async (append) => {
    try {
      const page = await api('GET', `/admin/api/ledger${query({ kind: kind.value, client_id: client.value.trim(), subject: subject.value.trim(), task: task.value.trim(), since: iso(sinceInput), until: iso(untilInput), limit: 50, cursor: append ? cursor : undefined })}`);
      cursor = page.next_cursor;
      const rows = page.items.map((/** @type {any} */ e) => [
        h('a', { href: `#/ledger/${e.seq}` }, `Open ${e.seq}`), when(e.at), reveal(e.kind), reveal(e.actor), reveal(e.payload?.client_id ?? ''),
        reveal(e.payload?.user?.sub ?? ''), e.payload?.task ? h('a', { href: `#/tasks/${encodeURIComponent(e.payload.task)}` }, reveal(e.payload.task)) : '',
      ]);
      if (append) {
        const body = results.querySelector('tbody');
        for (const r of rows) body?.appendChild(h('tr', null, r.map((/** @type {import('../dom.js').Child} */ c) => h('td', null, c))));
      } else {
        replace(results, table('Ledger entries, newest first', ['Entry', 'When', 'Kind', 'Actor', 'Client', 'User', 'Task'], rows, 'No entry matches.'));
      }
      more.hidden = !cursor;
    } catch (err) {
      replace(results, errorBox(err));
    }
  };
  more.addEventListener('click', () => void load(true));
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter ledger entries' },
    field('Kind', kind), field('Client', client), field('User sub', subject), field('Task', task), field('From', sinceInput), field('Until', untilInput),
    h('button', { type: 'submit' }, 'Filter'));
  form.addEventListener('submit', (e) => { e.preventDefault(); void load(false); });
  replace(main, h('h1', null, 'Ledger'), verifier(), h('h2', null, 'Entries'), form, results, more);
  await load(false);
}

/** @type {import('../app.js').Page} */
export async function ledgerEntryPage(main, _me, [seq]) {
  const res = await send('GET', `/ledger/entries/${encodeURIComponent(/** @type {string} */ (seq))}/proof`);
  const proof = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, proof);
  const e = proof.entry;
  const check = h('p', { 'aria-live': 'polite' });
  replace(main,
    h('p', null, h('a', { href: '#/ledger' }, '← Ledger')),
    h('h1', null, `Ledger entry ${e.seq}`),
    h('dl', { class: 'facts' },
      h('dt', null, 'Kind'), h('dd', null, reveal(e.kind)),
      h('dt', null, 'When'), h('dd', null, when(e.at)),
      h('dt', null, 'Actor'), h('dd', null, reveal(e.actor)),
      h('dt', null, 'Leaf hash'), h('dd', { class: 'mono wrap' }, e.leaf_hash),
      h('dt', null, 'Chain hash'), h('dd', { class: 'mono wrap' }, e.chain_hash)),
    h('h2', null, 'Payload'), jsonView(e.payload),
    h('h2', null, 'Inclusion proof'),
    proof.covered
      ? [h('p', null, `Leaf ${proof.leaf_index} of the checkpoint over ${proof.checkpoint.tree_size} entries signed ${when(proof.checkpoint.timestamp)}; root `, h('span', { class: 'mono wrap' }, proof.checkpoint.root_hash), '.'),
        h('ol', { class: 'mono small wrap' }, proof.inclusion_proof.map((/** @type {string} */ x) => h('li', null, x))), check]
      : h('p', { class: 'note' }, reveal(proof.message)));
  if (proof.covered) {
    const ok = await verifyInclusion(e.leaf_hash, proof.leaf_index, proof.checkpoint.tree_size, proof.inclusion_proof, proof.checkpoint.root_hash);
    replace(check, ok ? h('span', { class: 'ok-note' }, 'Checked in this browser: the path leads to the checkpoint\'s root.') : h('span', { class: 'error' }, 'The path does NOT lead to the checkpoint\'s root.'));
  }
}
