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
