import { describe, expect, it } from 'vitest';
import { TaskQueue } from '../../packages/resource/src/task_queue.ts';

/** A task that runs until released, recording how many run at once. */
function gate() {
  let release!: () => void;
  const done = new Promise<void>((resolve) => { release = resolve; });
  return { done, release };
}

describe('TaskQueue (background denial reports)', () => {
  it('runs at most `concurrency` tasks at once, queues the rest up to the backlog, and drops beyond it', async () => {
    const queue = new TaskQueue(2, 3);
    const gates = Array.from({ length: 6 }, gate);
    let active = 0;
    let peak = 0;
    const finished: number[] = [];
    const accepted = gates.map((g, i) => queue.push(async () => {
      active++;
      peak = Math.max(peak, active);
      await g.done;
      active--;
      finished.push(i);
    }));
    expect(accepted).toEqual([true, true, true, true, true, false]);
    expect([queue.running, queue.waiting]).toEqual([2, 3]);
    const idle = queue.idle();
    for (const g of gates) g.release();
    await idle;
    expect(peak).toBe(2);
    expect(finished.sort()).toEqual([0, 1, 2, 3, 4]);
    expect([queue.running, queue.waiting]).toEqual([0, 0]);
  });

  it('swallows failures, synchronous or not, and goes on with the next task', async () => {
    const queue = new TaskQueue(1, 10);
    const ran: string[] = [];
    queue.push(() => { throw new Error('sync'); });
    queue.push(async () => { throw new Error('async'); });
    queue.push(async () => { ran.push('after'); });
    await queue.idle();
    expect(ran).toEqual(['after']);
    // idle() with nothing to do resolves at once.
    await queue.idle();
  });
});
