/**
 * Background work with bounded concurrency and a bounded backlog, for reports that must not delay the
 * answer they describe. Failures are swallowed: the caller has already answered.
 */
export class TaskQueue {
  readonly #concurrency: number;
  readonly #maxWaiting: number;
  readonly #waiting: Array<() => Promise<unknown>> = [];
  #running = 0;
  #idle: Array<() => void> = [];

  constructor(concurrency: number, maxWaiting: number) {
    this.#concurrency = concurrency;
    this.#maxWaiting = maxWaiting;
  }

  get running(): number {
    return this.#running;
  }

  get waiting(): number {
    return this.#waiting.length;
  }

  /** Runs `task` now or after earlier ones; false when the backlog is full and it was dropped. */
  push(task: () => Promise<unknown>): boolean {
    if (this.#running < this.#concurrency) {
      this.#start(task);
      return true;
    }
    if (this.#waiting.length >= this.#maxWaiting) return false;
    this.#waiting.push(task);
    return true;
  }

  /** Resolves once nothing is running or waiting (tasks pushed meanwhile included). */
  idle(): Promise<void> {
    if (this.#running === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #start(task: () => Promise<unknown>): void {
    this.#running++;
    // Promise.resolve().then: a task that throws synchronously is swallowed like one that rejects.
    void Promise.resolve().then(task).catch(() => undefined).finally(() => {
      this.#running--;
      const next = this.#waiting.shift();
      if (next) return this.#start(next);
      if (this.#running === 0) for (const resolve of this.#idle.splice(0)) resolve();
    });
  }
}
