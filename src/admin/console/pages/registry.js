// @ts-check
// The registry: clients, resources, trusted issuers and admin credentials. Lists for every role; create,
// edit (as JSON, checked by the server), delete and secret rotation for admins. A new secret or
// credential is shown once, then forgotten by the page.
import { api, can } from '../api.js';
import { announce, confirmDialog, errorBox, field, h, replace, reveal, table, when } from '../dom.js';

/**
 * @typedef {{ title: string; path: string; key: string; columns: Array<[string, (x: any) => any]>; template: unknown; editable: string[]; removeVerb: string }} Kind
 */

/** @type {Record<string, Kind>} */
const KINDS = {
  clients: {
    title: 'Clients', path: '/admin/api/clients', key: 'client_id', removeVerb: 'Delete',
    columns: [['Client id', (c) => reveal(c.client_id)], ['Name', (c) => reveal(c.client_name ?? '')], ['Grants', (c) => reveal((c.grant_types ?? []).join(' '), { limit: 80 })], ['Scope', (c) => reveal(c.scope, { limit: 80 })], ['Resource server', (c) => reveal(c.resource_server ?? '')]],
    template: { client_id: 'my-agent', client_name: 'My agent', grant_types: ['urn:ietf:params:oauth:grant-type:token-exchange'], scope: 'expenses:read' },
    editable: ['client_name', 'grant_types', 'scope', 'token_endpoint_auth_method', 'jwks', 'resource_server'],
  },
  resources: {
    title: 'Resources', path: '/admin/api/resources', key: 'identifier', removeVerb: 'Delete',
    columns: [['Identifier', (r) => reveal(r.identifier)], ['Name', (r) => reveal(r.name)], ['Scopes (sensitivity, operation)', (r) => reveal((r.scopes ?? []).map((/** @type {any} */ s) => `${s.name} (${s.sensitivity}, ${s.operation})`).join('; '), { limit: 200 })], ['Token TTL', (r) => String(r.access_token_ttl ?? 'default')]],
    template: { identifier: 'https://api.example', name: 'Example API', scopes: [{ name: 'example:read', sensitivity: 'internal', operation: 'read' }] },
    editable: ['name', 'scopes', 'access_token_ttl'],
  },
  issuers: {
    title: 'Trusted issuers', path: '/admin/api/issuers', key: 'issuer', removeVerb: 'Delete',
    columns: [['Issuer', (i) => reveal(i.issuer)], ['Audiences', (i) => reveal((i.audiences ?? []).join(' '))], ['Algorithms', (i) => reveal((i.algorithms ?? []).join(' '))], ['Keys', (i) => reveal(i.jwks_uri ?? `${i.jwks?.keys?.length ?? 0} inline key(s)`)]],
    template: { issuer: 'https://idp.example', jwks_uri: 'https://idp.example/jwks', audiences: ['intentgate'] },
    editable: ['jwks', 'jwks_uri', 'algorithms', 'audiences', 'typs', 'scope_claim'],
  },
  admins: {
    title: 'Admin credentials', path: '/admin/api/admins', key: 'id', removeVerb: 'Revoke',
    columns: [['Name', (a) => reveal(a.name)], ['Role', (a) => reveal(a.role)], ['Person', (a) => (a.user ? [reveal(a.user.sub), ' at ', reveal(a.user.issuer)] : '—')], ['Created', (a) => when(a.created_at)], ['Revoked', (a) => when(a.revoked_at)]],
    template: { name: 'Rita (reviewer)', role: 'reviewer', user: { issuer: 'https://idp.example', sub: 'rita' } },
    editable: ['role'],
  },
};

/**
 * A value shown once: a client secret or an admin credential. Dismissing it removes it from the page.
 * @param {string} label
 * @param {string} value
 */
function shownOnce(label, value) {
  const input = h('input', { type: 'text', readonly: true, value, class: 'mono secret-value', spellcheck: 'false' });
  const done = h('button', { type: 'button', class: 'primary' }, 'I have stored it');
  const box = h('section', { class: 'card once', role: 'alert', 'aria-labelledby': 'once-title' },
    h('h2', { id: 'once-title' }, label),
    h('p', null, 'Shown once: copy it now. The server keeps it encrypted and will not show it again.'),
    field(label, input), done);
  done.addEventListener('click', () => {
    input.value = '';
    box.remove();
    announce(`${label} dismissed`);
  });
  queueMicrotask(() => input.select());
  return box;
}

/**
 * A JSON editor form for a create or an edit.
 * @param {string} title
 * @param {unknown} initial
 * @param {(body: any) => Promise<void>} submit
 * @param {() => void} cancel
 */
function jsonForm(title, initial, submit, cancel) {
  const area = h('textarea', { rows: 12, class: 'mono', spellcheck: 'false', name: 'json' });
  area.value = JSON.stringify(initial, null, 2);
  const status = h('div', { 'aria-live': 'polite' });
  const cancelBtn = h('button', { type: 'button' }, 'Cancel');
  cancelBtn.addEventListener('click', cancel);
  const form = h('form', { class: 'card', 'aria-label': title }, h('h2', null, title), field('JSON', area, 'Unknown fields are refused; the server checks everything.'),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Save'), cancelBtn), status);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    let body;
    try {
      body = JSON.parse(area.value);
    } catch (err) {
      replace(status, h('p', { class: 'error', role: 'alert' }, `Not valid JSON: ${/** @type {Error} */ (err).message}`));
      return;
    }
    try {
      await submit(body);
    } catch (err) {
      replace(status, errorBox(err));
    }
  });
  return form;
}

/** @type {import('../app.js').Page} */
export async function registryPage(main, me, [kindName]) {
  const kind = KINDS[/** @type {string} */ (kindName)];
  if (!kind) throw new Error('unknown registry section');
  const admin = can(me, 'change');
  const tabs = h('nav', { 'aria-label': 'Registry sections', class: 'tabs' }, h('ul', null,
    Object.entries(KINDS).filter(([k]) => k !== 'admins' || admin).map(([k, v]) => h('li', null, h('a', { href: `#/registry/${k}`, 'aria-current': k === kindName ? 'page' : null }, v.title)))));
  const top = h('div');
  const body = h('div');
  const render = async () => {
    const page = await api('GET', `${kind.path}?limit=200`);
    const rows = page.items.map((/** @type {any} */ item) => {
      const id = String(item[kind.key]);
      const cells = kind.columns.map(([, f]) => f(item));
      /** @type {HTMLElement[]} */
      const buttons = [];
      if (admin && !(kindName === 'admins' && item.revoked_at)) {
        const edit = h('button', { type: 'button', class: 'small' }, 'Edit');
        edit.setAttribute('aria-label', `Edit ${id}`);
        edit.addEventListener('click', () => {
          const current = Object.fromEntries(kind.editable.filter((k) => k in item).map((k) => [k, item[k]]));
          replace(top, jsonForm(`Edit ${id}`, current, async (patch) => {
            await api('PATCH', `${kind.path}/${encodeURIComponent(id)}`, patch);
            announce(`${id} saved`);
            replace(top);
            await render();
          }, () => replace(top)));
        });
        const remove = h('button', { type: 'button', class: 'small danger' }, kind.removeVerb);
        remove.setAttribute('aria-label', `${kind.removeVerb} ${id}`);
        remove.addEventListener('click', async () => {
          const ok = await confirmDialog(`${kind.removeVerb} ${id}?`, h('p', null, kindName === 'admins'
            ? 'The credential stops working at once. The record stays, marked revoked.'
            : kindName === 'clients' ? 'The client can no longer authenticate; tokens it holds stay as they are until revoked or expired.' : 'It is removed from the registry.'), kind.removeVerb);
          if (!ok) return;
          try {
            await api('DELETE', `${kind.path}/${encodeURIComponent(id)}`);
            announce(`${id} removed`);
            await render();
          } catch (err) {
            replace(top, errorBox(err));
          }
        });
        buttons.push(edit, remove);
        if (kindName === 'clients' && item.token_endpoint_auth_method !== 'private_key_jwt') {
          const rotate = h('button', { type: 'button', class: 'small' }, 'Rotate secret');
          rotate.setAttribute('aria-label', `Rotate secret of ${id}`);
          rotate.addEventListener('click', async () => {
            const ok = await confirmDialog(`Rotate the secret of ${id}?`, h('p', null, 'A new secret replaces the old one at once: the client must be given the new one.'), 'Rotate secret');
            if (!ok) return;
            try {
              const r = await api('POST', `${kind.path}/${encodeURIComponent(id)}/secret`, {});
              replace(top, shownOnce(`New secret of ${id}`, r.client_secret));
            } catch (err) {
              replace(top, errorBox(err));
            }
          });
          buttons.push(rotate);
        }
      }
      return [...cells, buttons.length ? h('div', { class: 'row-actions' }, buttons) : ''];
    });
    replace(body, table(kind.title, [...kind.columns.map(([n]) => n), 'Actions'], rows, `No ${kind.title.toLowerCase()} yet.`));
  };
  /** @type {HTMLElement | null} */
  let create = null;
  if (admin) {
    create = h('button', { type: 'button', class: 'primary' }, `New ${kindName === 'admins' ? 'credential' : kind.title.toLowerCase().replace(/s$/, '')}`);
    create.addEventListener('click', () => {
      replace(top, jsonForm(`New ${kind.title.toLowerCase().replace(/s$/, '')}`, kind.template, async (input) => {
        const made = await api('POST', kind.path, input);
        announce(`${made[kind.key]} created`);
        const secret = made.client_secret ?? made.token;
        replace(top, secret ? shownOnce(kindName === 'admins' ? `Credential for ${made.name}` : `Secret of ${made.client_id}`, secret) : h('p', { class: 'note' }, 'Created.'));
        await render();
      }, () => replace(top)));
    });
  }
  replace(main, h('h1', null, kind.title), tabs, create, top, body);
  await render();
}

