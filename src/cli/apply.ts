import { isDeepStrictEqual } from 'node:util';
import path from 'node:path';
import YAML from 'yaml';
import { AdminApiError, type AdminApi } from './admin_api.ts';
import { readNamedFile } from './commands.ts';
import { UsageError } from './usage_error.ts';

/**
 * `intentgate apply <file>`: the registry and policy declared in YAML, made so through the admin API.
 * Each item is found by its key (issuer, identifier, client_id, an admin's name); missing ones are created,
 * declared fields that differ are updated, and fields the file does not name are left as they are. Nothing
 * is deleted. Secrets and admin tokens of created items are printed once, as the API answers them.
 */
type Item = Record<string, unknown>;
interface Section { name: string; key: string; path: string; what: string }

const SECTIONS: Section[] = [
  { name: 'issuers', key: 'issuer', path: '/admin/api/issuers', what: 'issuer' },
  { name: 'resources', key: 'identifier', path: '/admin/api/resources', what: 'resource' },
  { name: 'clients', key: 'client_id', path: '/admin/api/clients', what: 'client' },
];
const TOP = new Set([...SECTIONS.map((s) => s.name), 'admins', 'policy']);

const isObject = (v: unknown): v is Item => typeof v === 'object' && v !== null && !Array.isArray(v);

function parse(text: string): Item {
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (err) {
    throw new UsageError(`not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (!isObject(doc)) throw new UsageError('the file must be a YAML mapping with issuers, resources, clients, admins and/or policy');
  for (const k of Object.keys(doc)) if (!TOP.has(k)) throw new UsageError(`unknown section ${k}: the file may have ${[...TOP].join(', ')}`);
  for (const name of [...SECTIONS.map((s) => s.name), 'admins']) {
    const list = doc[name];
    if (list === undefined) continue;
    if (!Array.isArray(list) || !list.every(isObject)) throw new UsageError(`${name} must be a list of mappings`);
  }
  return doc;
}

async function getOrUndefined<T>(api: AdminApi, p: string): Promise<T | undefined> {
  try {
    return await api.call<T>('GET', p);
  } catch (err) {
    if (err instanceof AdminApiError && err.status === 404) return undefined;
    throw err;
  }
}

/** The declared fields whose value differs from what is stored. */
function differing(declared: Item, existing: Item, key: string): Item {
  const out: Item = {};
  for (const [k, v] of Object.entries(declared)) if (k !== key && !isDeepStrictEqual(v, existing[k])) out[k] = v;
  return out;
}

async function allAdmins(api: AdminApi): Promise<Item[]> {
  const items: Item[] = [];
  let cursor: string | null = null;
  do {
    const page: { items: Item[]; next_cursor: string | null } = await api.call('GET', `/admin/api/admins?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

export async function applyFile(api: AdminApi, text: string, dir: string, { dryRun, out }: { dryRun: boolean; out: NodeJS.WritableStream }): Promise<void> {
  const doc = parse(text);
  const counts = { created: 0, updated: 0, unchanged: 0 };
  const say = (line: string) => out.write(`${dryRun ? 'would have ' : ''}${line}\n`);
  // Where an item failed, named, so a long file's mistake is found at once.
  const at = async <T>(label: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof AdminApiError) throw new UsageError(`${label}: ${err.message}`);
      throw err;
    }
  };

  for (const s of SECTIONS) {
    for (const item of (doc[s.name] as Item[] | undefined) ?? []) {
      const id = item[s.key];
      if (typeof id !== 'string' || !id) throw new UsageError(`every entry of ${s.name} needs ${s.key}`);
      const label = `${s.what} ${id}`;
      await at(label, async () => {
        const existing = await getOrUndefined<Item>(api, `${s.path}/${encodeURIComponent(id)}`);
        if (!existing) {
          counts.created++;
          if (dryRun) return say(`created ${label}`);
          const made = await api.call<Item>('POST', s.path, item);
          say(`created ${label}${typeof made.client_secret === 'string' ? `; client_secret (shown once): ${made.client_secret}` : ''}`);
          return;
        }
        const change = differing(item, existing, s.key);
        if (Object.keys(change).length === 0) {
          counts.unchanged++;
          return;
        }
        counts.updated++;
        if (!dryRun) await api.call('PATCH', `${s.path}/${encodeURIComponent(id)}`, change);
        say(`updated ${label} (${Object.keys(change).join(', ')})`);
      });
    }
  }

  const admins = (doc.admins as Item[] | undefined) ?? [];
  if (admins.length) {
    const live = (await allAdmins(api)).filter((a) => a.revoked_at === null);
    for (const want of admins) {
      if (typeof want.name !== 'string' || !want.name) throw new UsageError('every entry of admins needs name');
      const label = `admin ${want.name}`;
      await at(label, async () => {
        const same = live.filter((a) => a.name === want.name);
        if (same.length > 1) throw new UsageError(`${label}: ${same.length} live credentials have that name; revoke the extra ones first`);
        const existing = same[0];
        if (!existing) {
          counts.created++;
          if (dryRun) return say(`created ${label}`);
          const made = await api.call<Item>('POST', '/admin/api/admins', want);
          say(`created ${label} (${made.role}); token (shown once): ${made.token}`);
          return;
        }
        if (want.user !== undefined && !isDeepStrictEqual(want.user, existing.user)) {
          throw new UsageError(`${label} is bound to ${JSON.stringify(existing.user)}; a binding is fixed at creation: revoke it (admin token revoke ${existing.id}) and apply again`);
        }
        const role = want.role ?? 'admin';
        if (role === existing.role) {
          counts.unchanged++;
          return;
        }
        counts.updated++;
        if (!dryRun) await api.call('PATCH', `/admin/api/admins/${encodeURIComponent(existing.id as string)}`, { role });
        say(`updated ${label} (role ${existing.role} -> ${role})`);
      });
    }
  }

  if (doc.policy !== undefined) {
    const p = doc.policy;
    if (!isObject(p) || (typeof p.file === 'string') === (typeof p.document === 'string') || Object.keys(p).some((k) => k !== 'file' && k !== 'document')) {
      throw new UsageError('policy takes either file (relative to this file) or document');
    }
    const document = typeof p.file === 'string' ? readNamedFile(path.resolve(dir, p.file), 'policy file') : p.document as string;
    await at('policy', async () => {
      const current = await api.call<{ version: number; document: string }>('GET', '/admin/api/policies/current');
      if (current.document === document) {
        counts.unchanged++;
        return;
      }
      counts.updated++;
      if (dryRun) return say('published a new policy version');
      const made = await api.call<{ version: number }>('POST', '/admin/api/policies', { document, source: `intentgate apply${typeof p.file === 'string' ? ` ${p.file}` : ''}` });
      say(`published policy version ${made.version} (was ${current.version})`);
    });
  }

  const total = counts.created + counts.updated + counts.unchanged;
  if (counts.created + counts.updated === 0) {
    out.write(`nothing to change: all ${total} declared items are as declared\n`);
  } else {
    out.write(`${dryRun ? 'would have ' : ''}${counts.created} created, ${counts.updated} updated, ${counts.unchanged} unchanged\n`);
  }
}
