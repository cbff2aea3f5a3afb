import http from 'node:http';
import type net from 'node:net';

/** One request's fate as the client saw it: an answer (status, headers, body), or the socket error it got. */
export interface Outcome {
  status?: number;
  headers?: http.IncomingHttpHeaders;
  body?: string;
  /** The error code (ECONNRESET, ECONNREFUSED, ...) when no answer came. */
  error?: string;
  /** Which TCP connection carried it (numbered by this loader, in order of first use). */
  socket: number;
  /** Milliseconds from sending to the end of the answer (or the error). */
  ms: number;
  /** Whether it went on a kept-alive connection an earlier request had used. */
  reused?: boolean;
}

export interface Request { method: string; path: string; headers?: Record<string, string>; body?: string }

const socketIds = new WeakMap<net.Socket, number>();
let nextSocket = 1;

/** Sends one request through `agent` (a keep-alive agent reuses its connections), never throwing. */
export function send(agent: http.Agent, base: string, request: Request): Promise<Outcome> {
  const url = new URL(request.path, base);
  const started = performance.now();
  return new Promise((resolve) => {
    let socket = 0;
    const req = http.request(url, { method: request.method, agent, headers: { ...request.headers, ...(request.body === undefined ? {} : { 'content-length': String(Buffer.byteLength(request.body)) }) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), socket, ms: performance.now() - started, reused: req.reusedSocket }));
      res.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message, socket, ms: performance.now() - started }));
    });
    req.on('socket', (s) => {
      if (!socketIds.has(s)) socketIds.set(s, nextSocket++);
      socket = socketIds.get(s)!;
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message, socket, ms: performance.now() - started, reused: req.reusedSocket }));
    req.end(request.body);
  });
}

/** The p-th percentile (0-100) of a list of numbers; NaN when empty. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
