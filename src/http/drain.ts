import type http from 'node:http';
import net from 'node:net';

// A connection idle when the drain starts had its last answer before it, without `Connection: close`, so its
// client may be sending the next request right now. It gets at least this long to do so, and as long as other
// requests are still being served (that request is then served, with `Connection: close`); closing it at
// once would reset such a request.
const IDLE_GRACE_MS = 1000;
const IDLE_CHECK_MS = 100;

/**
 * Graceful shutdown of an HTTP/1.1 server, for rolling restarts: stop accepting connections, answer every
 * request still arriving on an open connection with `Connection: close` (so no client reuses it), let the
 * requests in flight finish, close connections left idle, and report when none is left. Nothing in flight is
 * reset unless the deadline passes.
 */
export class Drain {
  readonly #server: http.Server;
  // Answers not yet finished (their requests are being served).
  readonly #open = new Set<http.ServerResponse>();
  #draining = false;

  constructor(server: http.Server) {
    this.#server = server;
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** Wraps the server's request listener: every response once draining has `Connection: close`. */
  handler(listener: http.RequestListener): http.RequestListener {
    return (req, res) => {
      if (this.#draining) res.setHeader('Connection', 'close');
      this.#open.add(res);
      res.once('close', () => this.#open.delete(res));
      listener(req, res);
    };
  }

  /**
   * Starts the drain. Resolves once every connection has ended, or at the deadline, when whatever is left is
   * closed (and counted in `forced`).
   */
  async drain(timeoutMs: number): Promise<{ forced: number }> {
    this.#draining = true;
    for (const res of this.#open) if (!res.headersSent) res.setHeader('Connection', 'close');
    // net.Server's close, not http.Server's: the latter also closes idle connections at once (see IDLE_GRACE_MS).
    const closed = new Promise<void>((resolve) => net.Server.prototype.close.call(this.#server, () => resolve()));
    const graceEnds = Date.now() + IDLE_GRACE_MS;
    const idle = setInterval(() => {
      if (Date.now() >= graceEnds && this.#open.size === 0) this.#server.closeIdleConnections();
    }, IDLE_CHECK_MS).unref();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<number>((resolve) => {
      timer = setTimeout(() => {
        this.#server.getConnections((err, count) => {
          this.#server.closeAllConnections();
          resolve(err ? 0 : count);
        });
      }, timeoutMs).unref();
    });
    try {
      const forced = await Promise.race([closed.then(() => 0), deadline]);
      return { forced };
    } finally {
      clearInterval(idle);
      clearTimeout(timer);
    }
  }
}
