// Minimal types for the parts of autocannon 9 the benchmark uses (the package ships none).
declare module 'autocannon' {
  /** The raw request a `setupRequest` function may change before it is sent. */
  export interface RawRequest {
    method?: string;
    path?: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
  }

  export interface RequestSpec extends RawRequest {
    /** A function, or (with `workers`) the path of a CommonJS module exporting one. */
    setupRequest?: ((req: RawRequest, context: Record<string, unknown>) => RawRequest | undefined) | string;
    onResponse?: ((status: number, body: string, context: Record<string, unknown>, headers: Record<string, string>) => void) | string;
  }

  export interface Options extends RawRequest {
    url: string;
    connections?: number;
    /** Seconds. */
    duration?: number;
    workers?: number;
    pipelining?: number;
    /** Seconds. */
    timeout?: number;
    title?: string;
    requests?: RequestSpec[];
    initialContext?: Record<string, unknown>;
  }

  export interface Histogram {
    average: number;
    mean: number;
    stddev: number;
    min: number;
    max: number;
    total: number;
    p50: number;
    p90: number;
    p97_5: number;
    p99: number;
    [k: string]: number;
  }

  export interface Result {
    title?: string;
    url: string;
    connections: number;
    duration: number;
    start: Date;
    finish: Date;
    errors: number;
    timeouts: number;
    mismatches: number;
    non2xx: number;
    resets: number;
    '2xx': number;
    '4xx': number;
    '5xx': number;
    statusCodeStats: Record<string, { count: number }>;
    /** Milliseconds. */
    latency: Histogram & { totalCount: number };
    /** Requests per second, sampled each second; `total` is the number completed. */
    requests: Histogram & { sent: number };
    throughput: Histogram;
  }

  export interface Instance extends PromiseLike<Result> {
    stop(): void;
  }

  function autocannon(opts: Options): Instance;
  function autocannon(opts: Options, cb: (err: Error | null, result: Result) => void): Instance;
  export default autocannon;
}
