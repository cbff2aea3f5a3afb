import type { Context, Next } from 'koa';
import type { AdmissionGate } from '../ops/admission.ts';
import type { Metrics } from '../ops/metrics.ts';
import { sendOverloaded } from './errors.ts';

// Never shed: liveness, readiness and metrics must answer under overload (a readiness probe shed under load
// would take every instance out of rotation at once, and the metrics are how an operator sees the overload).
const EXEMPT = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * Admission control at the edge, before anything reads a body or calls the database: a shed request costs a
 * few microseconds and a short answer.
 */
export function admissionControl(gate: AdmissionGate, metrics: Metrics) {
  return async (ctx: Context, next: Next): Promise<void> => {
    if (EXEMPT.has(ctx.path)) return next();
    const admission = await gate.admit();
    if (!admission.admitted) {
      metrics.shed.inc({ reason: admission.reason });
      return sendOverloaded(ctx);
    }
    try {
      await next();
    } finally {
      admission.release();
    }
  };
}
