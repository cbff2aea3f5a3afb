/**
 * The CLI's one way to change anything: the admin API, of a running server or of one the CLI composes
 * in-process (cli/connect.ts). So a command behaves the same whether or not a server runs.
 */
export class AdminApiError extends Error {
  readonly status: number;
  readonly error: string;
  constructor(status: number, error: string, description: string) {
    super(`${description} (${status} ${error})`);
    this.status = status;
    this.error = error;
  }
}

const MAX_RETRIES = 30;

export class AdminApi {
  readonly #base: string;
  readonly #token: string;
  constructor(base: string, token: string) {
    this.#base = base.replace(/\/$/, '');
    this.#token = token;
  }

  /** One request; 429 is waited out (nothing was done), any other error answer is thrown as one line. */
  async #send(method: string, path: string, body: unknown, accept: string): Promise<Response> {
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      try {
        res = await fetch(`${this.#base}${path}`, {
          method,
          headers: {
            authorization: `Bearer ${this.#token}`,
            accept,
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      } catch (err) {
        throw new AdminApiError(0, 'unreachable', `cannot reach the admin API at ${this.#base}: ${(err as Error).cause ?? (err as Error).message}`);
      }
      if (res.status === 429 && attempt < MAX_RETRIES) {
        const wait = Math.min(Number(res.headers.get('retry-after')) || 1, 10);
        await res.body?.cancel();
        await new Promise((r) => setTimeout(r, wait * 1000));
        continue;
      }
      if (res.ok) return res;
      const text = await res.text();
      let parsed: { error?: string; error_description?: string } = {};
      try { parsed = JSON.parse(text); } catch { /* not JSON */ }
      throw new AdminApiError(res.status, parsed.error ?? 'error', parsed.error_description ?? (text.slice(0, 200) || res.statusText));
    }
  }

  async call<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.#send(method, path, body, 'application/json');
    if (res.status === 204) return undefined as T;
    return (await res.json()) as T;
  }

  /** An NDJSON answer, line by line as it arrives. */
  async lines(method: string, path: string, body: unknown, onLine: (line: string) => void | Promise<void>): Promise<void> {
    const res = await this.#send(method, path, body, 'application/x-ndjson');
    const decoder = new TextDecoder();
    let rest = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        rest += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = rest.indexOf('\n')) >= 0) {
          const line = rest.slice(0, nl);
          rest = rest.slice(nl + 1);
          if (line) await onLine(line);
        }
      }
    } catch (err) {
      throw new AdminApiError(0, 'interrupted', `the answer from ${this.#base}${path} broke off: ${(err as Error).message}`);
    }
    if (rest) await onLine(rest);
  }
}
