import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAgent, type Agent } from '../../src/agent/index.ts';
import { entriesOf } from '../helpers/ledger.ts';
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
  const server = http.createServer((req, res) => {
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
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: origin,
    seen,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
