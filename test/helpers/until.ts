/**
 * Polls `probe` until it returns true and answers the delay it took, in ms. The timeout is generous (the
 * machine may be loaded) and only bounds a change that never comes.
 */
export async function until(probe: () => Promise<boolean>, timeoutMs = 20_000): Promise<number> {
  const started = performance.now();
  for (;;) {
    if (await probe()) return Math.round(performance.now() - started);
    if (performance.now() - started > timeoutMs) throw new Error(`the change was not in force after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
