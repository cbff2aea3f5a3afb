// @ts-check
// The overview: exchanges and denials per hour (a bar chart drawn as SVG, with its numbers in a table
// for screen readers), the reviews waiting, the suspended tasks, and the latest signed checkpoint.
import { api, ApiError } from '../api.js';
import { h, replace, s, table, when } from '../dom.js';

/** @param {Array<{ start: string; granted: number; denied: number }>} buckets */
function chart(buckets) {
  const W = 720;
  const H = 200;
  const pad = { l: 36, r: 8, t: 10, b: 28 };
  const max = Math.max(1, ...buckets.map((b) => b.granted + b.denied));
  const bw = (W - pad.l - pad.r) / Math.max(buckets.length, 1);
  const y = (/** @type {number} */ v) => pad.t + (H - pad.t - pad.b) * (1 - v / max);
  const totalGranted = buckets.reduce((n, b) => n + b.granted, 0);
  const totalDenied = buckets.reduce((n, b) => n + b.denied, 0);
  const label = `Exchanges per hour over the last ${buckets.length} hours: ${totalGranted} granted, ${totalDenied} denied.`;
  const bars = buckets.flatMap((b, i) => {
    const x = pad.l + i * bw + 1;
    return [
      s('rect', { x, y: y(b.granted), width: Math.max(bw - 2, 1), height: y(0) - y(b.granted), class: 'bar-granted' }),
      s('rect', { x, y: y(b.granted + b.denied), width: Math.max(bw - 2, 1), height: y(b.granted) - y(b.granted + b.denied), class: 'bar-denied' }),
    ];
  });
  const ticks = buckets.map((b, i) => (i % 6 === 0 ? s('text', { x: pad.l + i * bw, y: H - 8, class: 'tick' }, `${new Date(b.start).getUTCHours().toString().padStart(2, '0')}:00`) : null));
  return h('figure', { class: 'chart' },
    s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label, preserveAspectRatio: 'none', class: 'chart-svg' },
      s('title', {}, label),
      s('line', { x1: pad.l, x2: W - pad.r, y1: y(0), y2: y(0), class: 'axis' }),
      s('text', { x: 2, y: pad.t + 10, class: 'tick' }, String(max)),
      s('text', { x: 2, y: y(0), class: 'tick' }, '0'),
      bars, ticks),
    h('figcaption', null, h('span', { class: 'key granted' }, 'granted'), ' ', h('span', { class: 'key denied' }, 'denied'), ` per hour (UTC). ${totalGranted} granted, ${totalDenied} denied.`),
    h('details', null, h('summary', null, 'The numbers'), table('Exchanges per hour', ['Hour (UTC)', 'Granted', 'Denied'], buckets.filter((b) => b.granted || b.denied).map((b) => [when(b.start), String(b.granted), String(b.denied)]), 'No exchange in this period.')));
}

/**
 * @param {string} title @param {string | number} value @param {string} href @param {string} note
 */
function stat(title, value, href, note) {
  return h('a', { class: 'card stat', href }, h('span', { class: 'stat-value' }, String(value)), h('span', { class: 'stat-title' }, title), h('span', { class: 'hint' }, note));
}

/** @type {import('../app.js').Page} */
export async function overviewPage(main) {
  const [stats, reviews] = await Promise.all([api('GET', '/admin/api/ledger/stats?hours=24'), api('GET', '/admin/api/reviews?status=pending')]);
  /** @type {number | string} */
  let suspended;
  try {
    const t = await api('GET', '/admin/api/tasks?status=suspended&limit=100');
    suspended = t.next_cursor ? `${t.items.length}+` : t.items.length;
  } catch (err) {
    if (!(err instanceof ApiError && err.missingRoute)) throw err;
    // Without a task list: every suspension opens a review, so the pending ones count them.
    suspended = reviews.items.filter((/** @type {any} */ r) => r.kind === 'task_suspension').length;
  }
  const cp = stats.latest_checkpoint;
  replace(main,
    h('h1', null, 'Overview'),
    h('div', { class: 'stats' },
      stat('Pending reviews', reviews.items.length, '#/reviews', 'waiting for a person'),
      stat('Suspended tasks', suspended, '#/tasks', 'stopped by a behaviour rule or an admin'),
      stat('Ledger entries', stats.entries, '#/ledger', cp ? `latest checkpoint covers ${cp.tree_size}, signed ${when(cp.timestamp)}` : 'no checkpoint signed yet')),
    h('h2', null, 'Exchanges and denials, last 24 hours'),
    chart(stats.buckets),
    h('h2', null, 'Latest checkpoint'),
    cp ? h('dl', { class: 'facts' }, h('dt', null, 'Entries covered'), h('dd', null, String(cp.tree_size)), h('dt', null, 'Signed'), h('dd', null, when(cp.timestamp)),
      h('dt', null, 'Root hash'), h('dd', { class: 'mono wrap' }, cp.root_hash), h('dt', null, 'Key'), h('dd', { class: 'mono' }, cp.kid))
      : h('p', { class: 'empty' }, 'No checkpoint has been signed yet.'));
}
