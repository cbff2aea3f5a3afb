// @ts-check
// The review queue, polled every two seconds: what is asked, by which agent, for whom, why a person
// must look, and how long is left. A comment goes with every decision.
import { api, can } from '../api.js';
import { announce, errorBox, field, h, jsonView, replace, reveal, timeLeft, when } from '../dom.js';

const POLL_MS = 2000;

/** @param {any} review @param {import('../api.js').Me} me */
function isOwn(review, me) {
  return Boolean(me.user && review.user && me.user.issuer === review.user.issuer && me.user.sub === review.user.sub);
}

/**
 * @param {any} r
 * @param {import('../api.js').Me} me
 * @param {() => void} decided
 */
function reviewCard(r, me, decided) {
  const ctx = r.context ?? {};
  const own = isOwn(r, me);
  const titleId = `rev-${r.id}`;
  const left = h('span', { class: 'time-left' }, timeLeft(r.expires_at));
  const comment = h('textarea', { rows: 2, maxlength: 2000, name: 'comment' });
  const status = h('div', { 'aria-live': 'polite' });
  /** @param {boolean} approve */
  const decide = async (approve) => {
    buttons.forEach((b) => { b.disabled = true; });
    try {
      await api('POST', `/admin/api/reviews/${encodeURIComponent(r.id)}/${approve ? 'approve' : 'deny'}`, comment.value.trim() ? { comment: comment.value.trim() } : {});
      announce(`Review ${r.id} ${approve ? 'approved' : 'denied'}`);
      decided();
    } catch (err) {
      replace(status, errorBox(err));
      buttons.forEach((b) => { b.disabled = false; });
    }
  };
  const approveBtn = h('button', { type: 'button', class: 'primary' }, 'Approve');
  const denyBtn = h('button', { type: 'button', class: 'danger' }, 'Deny');
  approveBtn.addEventListener('click', () => void decide(true));
  denyBtn.addEventListener('click', () => void decide(false));
  const buttons = [approveBtn, denyBtn];
  let actions;
  if (own) actions = h('p', { class: 'note own' }, 'This request was made on your behalf: someone else must decide it.');
  else if (!can(me, 'decide')) actions = h('p', { class: 'note' }, `Your role (${me.role}) can read the queue but not decide.`);
  else if (!me.user) actions = h('p', { class: 'note' }, 'This credential is not bound to a person, so it cannot decide reviews.');
  else actions = h('div', { class: 'decide' }, field('Comment (kept in the ledger)', comment), h('div', { class: 'actions' }, approveBtn, denyBtn), status);
  const card = h('article', { class: `card review${own ? ' own' : ''}`, 'aria-labelledby': titleId, 'data-review': r.id },
    h('header', null,
      h('h2', { id: titleId }, r.kind === 'task_suspension' ? 'Task suspended' : 'Exchange request', ' ', h('span', { class: 'mono small' }, r.id)),
      own ? h('span', { class: 'badge warn' }, 'Your own request') : null,
      left),
    h('dl', { class: 'facts' },
      h('dt', null, 'Agent'), h('dd', null, h('a', { href: `#/agents/${encodeURIComponent(r.client_id)}` }, reveal(r.client_id))),
      h('dt', null, 'User'), h('dd', null, reveal(r.user?.sub), h('span', { class: 'hint' }, ' at ', reveal(r.user?.issuer))),
      r.task ? [h('dt', null, 'Task'), h('dd', null, h('a', { href: `#/tasks/${encodeURIComponent(r.task)}` }, reveal(r.task)))] : null,
      h('dt', null, 'Intent'), h('dd', { class: 'intent' }, reveal(ctx.intent)),
      h('dt', null, 'Rule'), h('dd', null, reveal([ctx.rule ?? []].flat().join(', ') || '—')),
      h('dt', null, 'Reasons'), h('dd', null, reveal([ctx.reasons ?? []].flat().join(', ') || '—')),
      h('dt', null, 'Asked'), h('dd', null, when(r.created_at)),
      h('dt', null, 'Details'), h('dd', null, ctx.details?.length ? jsonView(ctx.details) : '—'),
      h('dt', null, 'History evidence'), h('dd', null, ctx.evidence || ctx.history ? jsonView({ ...(ctx.evidence ? { evidence: ctx.evidence } : {}), ...(ctx.history ? { history: ctx.history } : {}) }) : '—')),
    actions);
  return { card, tick: () => { left.textContent = timeLeft(r.expires_at); } };
}

/** @type {import('../app.js').Page} */
export async function reviewsPage(main, me) {
  const list = h('div', { class: 'reviews' });
  const updated = h('p', { class: 'hint', 'aria-live': 'off' });
  const problem = h('div', { 'aria-live': 'polite' });
  replace(main, h('h1', null, 'Review queue'), h('p', null, 'Pending requests, oldest first. The list refreshes by itself.'), updated, problem, list);
  /** @type {Map<string, { card: HTMLElement; tick: () => void }>} */
  const shown = new Map();
  let stopped = false;
  let timer = 0;
  const refresh = async () => {
    try {
      const { items } = await api('GET', '/admin/api/reviews?status=pending');
      const ids = new Set(items.map((/** @type {any} */ r) => r.id));
      for (const [id, v] of shown) if (!ids.has(id)) { v.card.remove(); shown.delete(id); }
      let added = 0;
      for (const r of items) {
        const existing = shown.get(r.id);
        if (existing) { existing.tick(); continue; }
        // Cards already shown are kept as they are, so a comment being typed is not lost.
        const v = reviewCard(r, me, () => { v.card.remove(); shown.delete(r.id); empty(); });
        shown.set(r.id, v);
        list.appendChild(v.card);
        added++;
      }
      if (added && shown.size) announce(`${added} new request${added > 1 ? 's' : ''} to review`);
      empty();
      updated.textContent = `Updated ${new Date().toLocaleTimeString()}; ${shown.size} pending.`;
      replace(problem);
    } catch (err) {
      replace(problem, errorBox(err));
    }
  };
  const empty = () => {
    const note = list.querySelector('.empty');
    if (!shown.size && !note) list.appendChild(h('p', { class: 'empty' }, 'Nothing is waiting for a person.'));
    if (shown.size && note) note.remove();
  };
  const loop = async () => {
    await refresh();
    if (!stopped) timer = window.setTimeout(() => void loop(), POLL_MS);
  };
  await loop();
  return () => { stopped = true; clearTimeout(timer); };
}
