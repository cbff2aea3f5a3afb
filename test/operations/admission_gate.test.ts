import { describe, expect, it } from 'vitest';
import { AdmissionGate, type Admission } from '../../src/ops/admission.ts';

function admitted(a: Admission | Promise<Admission>): Extract<Admission, { admitted: true }> {
  if (a instanceof Promise || !a.admitted) throw new Error(`expected an immediate admission, got ${JSON.stringify(a)}`);
  return a;
}

describe('the admission gate', () => {
  it('admits up to its slots at once, queues the next in order, and hands each freed slot to the oldest waiter', async () => {
    const gate = new AdmissionGate(2, 60_000);
    const first = admitted(gate.admit());
    const second = admitted(gate.admit());
    const third = gate.admit();
    const fourth = gate.admit();
    expect(third).toBeInstanceOf(Promise);
    expect([gate.active, gate.waiting]).toEqual([2, 2]);
    first.release();
    first.release(); // twice is once
    const t = await third;
    expect(t.admitted).toBe(true);
    expect([gate.active, gate.waiting]).toEqual([2, 1]);
    second.release();
    expect((await fourth).admitted).toBe(true);
    expect([gate.active, gate.waiting]).toEqual([2, 0]);
  });

  it('sheds at once when every slot is busy and queueing is off', () => {
    const gate = new AdmissionGate(1, 0);
    admitted(gate.admit());
    expect(gate.admit()).toEqual({ admitted: false, reason: 'concurrency' });
  });

  it('sheds a waiter whose wait reaches the bound, and frees its place', async () => {
    const gate = new AdmissionGate(1, 20);
    const held = admitted(gate.admit());
    expect(await gate.admit()).toEqual({ admitted: false, reason: 'queue_delay' });
    expect(gate.waiting).toBe(0);
    held.release();
    admitted(gate.admit());
  });

  it('sheds at once when the expected wait is beyond the bound', async () => {
    const gate = new AdmissionGate(1, 50);
    const slow = admitted(gate.admit());
    await new Promise((r) => setTimeout(r, 120));
    slow.release(); // a service time of at least 120 ms: one waiter ahead would wait more than 50 ms
    admitted(gate.admit());
    expect(gate.admit()).toEqual({ admitted: false, reason: 'concurrency' });
  });
});
