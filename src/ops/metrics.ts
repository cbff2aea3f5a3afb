import client from 'prom-client';
import type { Db } from '../store/db.ts';

export interface Metrics {
  registry: client.Registry;
  requests: client.Counter<'method' | 'route' | 'status'>;
  latency: client.Histogram<'method' | 'route'>;
  grants: client.Counter<'grant_type' | 'outcome'>;
  /** Labelled by endpoint and reason class only (fixed sets), never by the client_id a caller claims. */
  clientAuthFailures: client.Counter<'endpoint' | 'reason'>;
  /** Requests answered 503 by admission control, by why: every slot busy (`concurrency`), or waited too long. */
  shed: client.Counter<'reason'>;
}

/** A registry per server instance, so several servers in one process (tests) do not collide. */
export function createMetrics(db: Db, admission?: { active: number; waiting: number }): Metrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: 'intentgate_process_' });
  const requests = new client.Counter({
    name: 'intentgate_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['method', 'route', 'status'] as const, registers: [registry],
  });
  const latency = new client.Histogram({
    name: 'intentgate_http_request_duration_seconds', help: 'HTTP request latency', labelNames: ['method', 'route'] as const, registers: [registry],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  });
  const grants = new client.Counter({
    name: 'intentgate_grants_total', help: 'Token endpoint outcomes by grant type', labelNames: ['grant_type', 'outcome'] as const, registers: [registry],
  });
  const clientAuthFailures = new client.Counter({
    name: 'intentgate_client_auth_failures_total', help: 'Failed client authentications by endpoint and reason class', labelNames: ['endpoint', 'reason'] as const, registers: [registry],
  });
  const shed = new client.Counter({
    name: 'intentgate_http_shed_total', help: 'Requests shed by admission control (503), by reason', labelNames: ['reason'] as const, registers: [registry],
  });
  const pool = () => (db.client as { pool?: { numUsed(): number; numFree(): number; numPendingAcquires(): number } }).pool;
  new client.Gauge({ name: 'intentgate_db_pool_used', help: 'Database connections in use', registers: [registry], collect() { this.set(pool()?.numUsed() ?? 0); } });
  new client.Gauge({ name: 'intentgate_db_pool_free', help: 'Idle database connections', registers: [registry], collect() { this.set(pool()?.numFree() ?? 0); } });
  new client.Gauge({ name: 'intentgate_db_pool_pending', help: 'Requests waiting for a database connection', registers: [registry], collect() { this.set(pool()?.numPendingAcquires() ?? 0); } });
  new client.Gauge({ name: 'intentgate_http_admitted', help: 'Requests being served (admission control slots in use)', registers: [registry], collect() { this.set(admission?.active ?? 0); } });
  new client.Gauge({ name: 'intentgate_http_queued', help: 'Requests waiting for an admission control slot', registers: [registry], collect() { this.set(admission?.waiting ?? 0); } });
  return { registry, requests, latency, grants, clientAuthFailures, shed };
}
