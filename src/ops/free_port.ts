import net from 'node:net';

/**
 * A port nothing listens on right now, for a server whose issuer URL must name its port before it starts
 * (tests, the benchmark, the demo). Another process could take it in between; on loopback that is rare.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Why `port` on `host` cannot be listened on right now (`EADDRINUSE`, `EACCES`, ...), or undefined when it
 * can. Checked before a server creates anything, so a taken port leaves no half-made first start behind.
 */
export async function portUnavailable(port: number, host: string): Promise<string | undefined> {
  if (port === 0) return undefined;
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    s.listen(port, host, () => s.close(() => resolve(undefined)));
  });
}

/** What to tell a person whose port is taken: one line, and what to do about it. */
export function portMessage(port: number, host: string, code: string): string {
  const next = port < 65535 ? port + 1 : 3001;
  if (code === 'EADDRINUSE') {
    return `port ${port} on ${host} is already in use (is intentgate already running?): stop what is using it, or choose another port, e.g. PORT=${next} npm start`;
  }
  if (code === 'EACCES') return `no permission to listen on port ${port} on ${host}: choose a port above 1023, e.g. PORT=3000`;
  return `cannot listen on port ${port} on ${host} (${code}): check HOST and PORT`;
}
