// The parts of untyped devDependencies the benchmarks use.

declare module '@parse/push-adapter' {
  export class ParsePushAdapter {
    constructor(config: Record<string, unknown>);
    send(data: Record<string, unknown>, installations: Array<Record<string, unknown>>): Promise<unknown[]>;
  }
}

declare module 'autocannon' {
  interface Options {
    url: string;
    method?: string;
    headers?: Record<string, string>;
    body?: string;
    connections?: number;
    pipelining?: number;
    duration?: number;
    amount?: number;
  }
  interface Histogram {
    average: number;
    mean: number;
    p50: number;
    p99: number;
    max: number;
    total: number;
  }
  interface Result {
    requests: Histogram;
    latency: Histogram;
    throughput: Histogram;
    errors: number;
    timeouts: number;
    non2xx: number;
    '2xx': number;
    duration: number;
  }
  function autocannon(options: Options): Promise<Result>;
  export default autocannon;
}
