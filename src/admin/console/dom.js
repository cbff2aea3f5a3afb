// @ts-check
// The one way the console builds the page: elements and text nodes, never HTML parsed from strings.
// Every value from the API (and so from the request side: intents, details, names, reasons) reaches the
// page as a Text node, so markup in it stays characters; links only point inside the console.

/** @typedef {Node | string | number | null | undefined | false | ChildList} Child */
/** @typedef {Child[]} ChildList */

/**
 * @param {Element} el
 * @param {Child[]} children
 */
function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/**
 * An attribute value that may be set. `href` only inside the console (`#/…`), so no `javascript:` or other
 * origin can become a link; no inline handlers or styles (the CSP refuses them anyway).
 * @param {string} name
 * @param {string} value
 */
function safeAttribute(name, value) {
  const n = name.toLowerCase();
  if (n.startsWith('on') || n === 'style' || n === 'srcdoc' || n === 'src' || n === 'action' || n === 'formaction') throw new Error(`attribute ${name} is not set by the console`);
  if (n === 'href' && !/^#\/[^\s]*$/.test(value)) throw new Error('links stay inside the console');
  return value;
}

/**
 * `h('button', { class: 'x', onclick: fn, disabled: true }, 'Approve')`.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, unknown> | null} [attrs]
 * @param {...Child} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), /** @type {EventListener} */ (v));
    else if (k === 'value' && 'value' in el) /** @type {HTMLInputElement} */ (el).value = String(v);
    else if (k === 'checked' && 'checked' in el) /** @type {HTMLInputElement} */ (el).checked = Boolean(v);
    else el.setAttribute(k, safeAttribute(k, v === true ? '' : String(v)));
  }
  append(el, children);
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';
/**
 * @param {string} tag
 * @param {Record<string, string | number>} [attrs]
 * @param {...Child} children
 * @returns {SVGElement}
 */
export function s(tag, attrs = {}, ...children) {
  const el = /** @type {SVGElement} */ (document.createElementNS(SVG, tag));
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, safeAttribute(k, String(v)));
  append(el, children);
  return el;
}

/** @param {Element} el @param {...Child} children */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/**
 * Characters a reader cannot see or that turn text around (the same classes the server refuses in
 * intents): controls, format characters (bidi overrides and isolates, zero-width), separators, tags,
 * default-ignorables, private use, unassigned, blank braille.
 */
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}\p{Co}\p{Cn}\u{E0000}-\u{E007F}\u2800]/u;

/** @param {string} c */
function codePoint(c) {
  return `U+${(c.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;
}

const SHORT = 400;

/**
 * A request-side string shown as text, with every invisible or direction-changing character replaced
 * by a visible marker (⟦U+202E⟧) and long values cut, with a button to show the rest.
 * @param {unknown} value
 * @param {{ limit?: number }} [options]
 */
export function reveal(value, options = {}) {
  const text = typeof value === 'string' ? value : value === null || value === undefined ? '' : String(value);
  const limit = options.limit ?? SHORT;
  const out = h('span', { class: 'req' });
  const chars = [...text];
  const render = (/** @type {string[]} */ part) => {
    /** @type {Child[]} */
    const nodes = [];
    let run = '';
    let hidden = 0;
    for (const c of part) {
      if (INVISIBLE.test(c)) {
        if (run) nodes.push(run);
        run = '';
        hidden++;
        nodes.push(h('mark', { class: 'invisible', title: `hidden character ${codePoint(c)}` }, `⟦${codePoint(c)}⟧`));
      } else {
        run += c;
      }
    }
    if (run) nodes.push(run);
    return { nodes, hidden };
  };
  if (chars.length <= limit) {
    const { nodes, hidden } = render(chars);
    replace(out, nodes, hidden ? h('span', { class: 'warn-chip' }, ` ${hidden} hidden character${hidden > 1 ? 's' : ''} shown`) : null);
    return out;
  }
  const head = render(chars.slice(0, limit));
  const more = h('button', { type: 'button', class: 'link', 'aria-expanded': 'false' }, `Show all ${chars.length} characters`);
  more.addEventListener('click', () => {
    const all = render(chars);
    replace(out, all.nodes, all.hidden ? h('span', { class: 'warn-chip' }, ` ${all.hidden} hidden characters shown`) : null);
  });
  replace(out, head.nodes, '… ', more);
  return out;
}

/**
 * JSON shown as an indented tree of text, each string revealed as above.
 * @param {unknown} value
 * @returns {HTMLElement}
 */
export function jsonView(value) {
  const pre = h('pre', { class: 'json' });
  /** @param {unknown} v @param {string} indent @returns {Child[]} */
  const walk = (v, indent) => {
    if (v === null || typeof v !== 'object') {
      return typeof v === 'string' ? ['"', reveal(v), '"'] : [h('span', { class: 'json-lit' }, JSON.stringify(v) ?? 'null')];
    }
    const inner = `${indent}  `;
    if (Array.isArray(v)) {
      if (!v.length) return ['[]'];
      return ['[\n', v.flatMap((x, i) => [inner, ...walk(x, inner), i < v.length - 1 ? ',\n' : '\n']), indent, ']'];
    }
    const entries = Object.entries(/** @type {Record<string, unknown>} */ (v));
    if (!entries.length) return ['{}'];
    return ['{\n', entries.flatMap(([k, x], i) => [inner, h('span', { class: 'json-key' }, '"', reveal(k), '"'), ': ', ...walk(x, inner), i < entries.length - 1 ? ',\n' : '\n']), indent, '}'];
  };
  replace(pre, walk(value, ''));
  return pre;
}

/** @param {string | null | undefined} iso */
export function when(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

/** @param {string | null | undefined} iso */
export function timeLeft(iso) {
  if (!iso) return '—';
  const ms = new Date(iso).getTime() - Date.now();
  if (ms <= 0) return 'expired';
  const m = Math.floor(ms / 60_000);
  if (m >= 60) return `${Math.floor(m / 60)} h ${m % 60} min left`;
  return m > 0 ? `${m} min left` : `${Math.ceil(ms / 1000)} s left`;
}

/** @param {string} text */
export function announce(text) {
  const el = document.getElementById('announce');
  if (el) el.textContent = text;
}

/**
 * A table with a caption and column headers.
 * @param {string} caption
 * @param {string[]} headers
 * @param {Child[][]} rows
 * @param {string} [empty]
 */
export function table(caption, headers, rows, empty = 'Nothing to show.') {
  if (!rows.length) return h('p', { class: 'empty' }, empty);
  return h('div', { class: 'table-wrap' }, h('table', null,
    h('caption', null, caption),
    h('thead', null, h('tr', null, headers.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', null, rows.map((r) => h('tr', null, r.map((c) => h('td', null, c)))))));
}

/**
 * A labelled form field.
 * @param {string} label
 * @param {HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement} control
 * @param {string} [hint]
 */
export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 10)}`;
  control.id = id;
  const hintId = hint ? `${id}-hint` : undefined;
  if (hintId) control.setAttribute('aria-describedby', hintId);
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, hint ? h('span', { class: 'hint', id: hintId }, hint) : null);
}

/**
 * A modal confirmation that says exactly what will happen; resolves true only on "confirm".
 * @param {string} title
 * @param {Child} body
 * @param {string} confirmLabel
 * @returns {Promise<boolean>}
 */
export function confirmDialog(title, body, confirmLabel) {
  return new Promise((resolve) => {
    const titleId = `d-${Math.random().toString(36).slice(2, 10)}`;
    const cancel = h('button', { type: 'button' }, 'Cancel');
    const ok = h('button', { type: 'button', class: 'danger' }, confirmLabel);
    const dlg = h('dialog', { 'aria-labelledby': titleId, class: 'confirm' }, h('h2', { id: titleId }, title), h('div', null, body), h('div', { class: 'actions' }, cancel, ok));
    const done = (/** @type {boolean} */ v) => {
      dlg.close();
      dlg.remove();
      resolve(v);
    };
    cancel.addEventListener('click', () => done(false));
    ok.addEventListener('click', () => done(true));
    dlg.addEventListener('cancel', (e) => {
      e.preventDefault();
      done(false);
    });
    document.body.appendChild(dlg);
    dlg.showModal();
    cancel.focus();
  });
}

/**
 * An error from the API shown as text, with the field it names.
 * @param {unknown} err
 */
export function errorBox(err) {
  const e = /** @type {{ status?: number; body?: { error?: string; error_description?: string; field?: string | null }; message?: string }} */ (err);
  const b = e.body;
  return h('div', { class: 'error', role: 'alert' },
    b?.error_description ? reveal(b.error_description) : e.message ?? String(err),
    b?.field ? h('span', { class: 'hint' }, ` (field: `, reveal(b.field), ')') : null);
}
