import http from 'node:http';
import { parse } from 'yaml';
import { createAgent, type Agent } from '@intentgate/agent';
import { entriesOf } from '../helpers/ledger.ts';
import { serve } from '../helpers/server.ts';
import type { World } from '../helpers/world.ts';

/** An agent for one of the world's clients, configured the convenient way (discovery by oauth4webapi). */
export function agentFor(w: World, clientId = 'agent'): Promise<Agent> {
  const [id, secret] = w.creds[clientId]!;
  return createAgent({ issuer: w.t.issuer, clientId: id, clientSecret: secret, http: { allowInsecure: true } });
}

/** How many exchanges the ledger recorded with this outcome. */
export async function ledgerCount(w: World, kind: 'exchange.granted' | 'exchange.denied'): Promise<number> {
  return (await entriesOf(w.t.server.db, kind)).length;
}

async function must(res: Promise<Response>, what: string): Promise<Response> {
  const r = await res;
  if (r.status !== 200 && r.status !== 201) throw new Error(`${what}: ${r.status} ${await r.text()}`);
  return r;
}

/**
 * Makes `identifier` (e.g. a local resource server's URL) a resource agents may read, as an admin would:
 * registered with the scope `expenses:read`, and a rule allowing it added to the policy in force.
 */
export async function registerResource(w: World, identifier: string): Promise<string> {
  await must(w.t.admin('POST', '/admin/api/resources', { identifier, name: identifier, scopes: [{ name: 'expenses:read', sensitivity: 'internal', operation: 'read' }] }), 'register resource');
  const current = await (await must(w.t.admin('GET', '/admin/api/policies/current'), 'read policy')).json() as { document: string };
  const policy = parse(current.document) as { rules: unknown[] };
  policy.rules.push({ id: `local-read-${policy.rules.length}`, effect: 'allow', resource: identifier, scopes: ['expenses:read'] });
  // JSON is YAML: the document needs no YAML writer.
  await must(w.t.admin('POST', '/admin/api/policies', { document: JSON.stringify(policy), source: 'agent tests' }), 'publish policy');
  return identifier;
}

export interface SeenRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface LocalServer {
  url: string;
  seen: SeenRequest[];
  close(): Promise<void>;
}

/**
 * A tiny HTTP server on an ephemeral port that records what it receives and answers with `respond`:
 * stands in for a resource server, or for a misbehaving authorization server.
 */
export async function localServer(respond: (req: SeenRequest, origin: string) => Promise<{ status: number; headers?: Record<string, string>; body: string }>): Promise<LocalServer> {
  const seen: SeenRequest[] = [];
  let origin = '';
  const served = await serve((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const one = { method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      seen.push(one);
      respond(one, origin).then(
        (r) => { res.writeHead(r.status, { 'content-type': 'application/json', ...r.headers }).end(r.body); },
        (err: Error) => { res.writeHead(500).end(err.message); },
      );
    });
  });
  origin = served.url;
  return { url: origin, seen, close: served.close };
}
