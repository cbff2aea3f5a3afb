/**
 * Admission control: at most `maxConcurrency` requests are served at once; a request beyond that waits for a
 * slot at most `maxQueueDelayMs`, and is shed (answered 503 at once) when it would wait longer. Shedding early
 * keeps the latency of admitted requests near their unloaded value and memory bounded under overload, instead
 * of every request queueing inside the process.
 *
 * A request is shed on arrival when the expected wait (requests already waiting × the recent mean service
 * time ÷ the slots) is beyond the bound, or when every slot is busy and queueing is off; one that was queued
 * and not admitted within the bound is shed then.
 */

export type ShedReason = 'concurrency' | 'queue_delay';
export type Admission = { admitted: true; release(): void } | { admitted: false; reason: ShedReason };

interface Waiter { resolve(a: Admission): void; timer: NodeJS.Timeout }

// Weight of the newest service time in the running mean (an exponentially weighted moving average).
const EWMA_WEIGHT = 0.1;

export class AdmissionGate {
  readonly #max: number;
  readonly #maxDelayMs: number;
  readonly #waiting: Waiter[] = [];
  #active = 0;
  #meanServiceMs = 0;

  constructor(maxConcurrency: number, maxQueueDelayMs: number) {
    this.#max = maxConcurrency;
    this.#maxDelayMs = maxQueueDelayMs;
  }

  /** Requests being served now. */
  get active(): number {
    return this.#active;
  }

  /** Requests waiting for a slot now. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Admits at once when a slot is free (synchronously, no promise), queues within the bound, or sheds. */
  admit(): Admission | Promise<Admission> {
    if (this.#active < this.#max && this.#waiting.length === 0) return this.#grant();
    if (this.#maxDelayMs === 0) return { admitted: false, reason: 'concurrency' };
    const expectedWaitMs = ((this.#waiting.length + 1) * this.#meanServiceMs) / this.#max;
    if (expectedWaitMs > this.#maxDelayMs) return { admitted: false, reason: 'concurrency' };
    return new Promise<Admission>((resolve) => {
      const waiter: Waiter = {
        resolve,
        timer: setTimeout(() => {
          const at = this.#waiting.indexOf(waiter);
          if (at !== -1) this.#waiting.splice(at, 1);
          resolve({ admitted: false, reason: 'queue_delay' });
        }, this.#maxDelayMs),
      };
      this.#waiting.push(waiter);
    });
  }

  #grant(): Admission {
    this.#active++;
    const started = performance.now();
    let released = false;
    return {
      admitted: true,
      release: () => {
        if (released) return;
        released = true;
        const ms = performance.now() - started;
        this.#meanServiceMs = this.#meanServiceMs === 0 ? ms : this.#meanServiceMs + EWMA_WEIGHT * (ms - this.#meanServiceMs);
        this.#active--;
        const next = this.#waiting.shift();
        if (next) {
          clearTimeout(next.timer);
          next.resolve(this.#grant());
        }
      },
    };
  }
}
