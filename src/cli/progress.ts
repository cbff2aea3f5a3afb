/**
 * Progress on stderr for commands that can run long: nothing for the first second (a quick command stays
 * quiet), then at most a line a second; `always` shows every update at once (`--progress`).
 */
export function progress(stderr: NodeJS.WritableStream & { isTTY?: boolean }, label: string, always = false) {
  const started = Date.now();
  let lastShown = 0;
  let shown = false;
  let what = '';
  const tty = stderr.isTTY === true;
  const show = () => {
    const secs = Math.floor((Date.now() - started) / 1000);
    const line = `${label}: ${what ? `${what}, ` : ''}${secs} s`;
    stderr.write(tty ? `\r${line}\x1b[K` : `${line}\n`);
    shown = true;
    lastShown = Date.now();
  };
  const maybe = () => {
    const now = Date.now();
    if (always || (now - started >= 1000 && now - lastShown >= 1000)) show();
  };
  // Even with no updates (a request the server works on), the clock ticks.
  const ticker = setInterval(maybe, 1000);
  ticker.unref();
  return {
    update(text: string) {
      what = text;
      maybe();
    },
    done() {
      clearInterval(ticker);
      if (shown && tty) stderr.write('\n');
    },
  };
}
