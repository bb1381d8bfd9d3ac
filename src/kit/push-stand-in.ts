// A loopback HTTP server standing in for a RhoConnect Push server (tests, `rhopush demo`,
// benchmarks): `POST /messageQueue/<device_pin>` with basic auth and a JSON body, answered 200, or
// as scripted.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeServer, listenOnLoopback, readBody, ScriptedStandIn } from './stand-in-server.js';

export type PushServerAnswer = { status: number; retryAfter?: number | string } | { stall: true };

export interface PushServerRecord {
  pin: string;
  method: string;
  path: string;
  contentType: string;
  /** user:password from basic auth, or undefined without it. */
  credentials?: string;
  body: string;
  status?: number;
}

export interface PushStandInOptions {
  /** Basic auth the server requires (`user:password`); none when omitted. */
  credentials?: string;
}

export class PushStandIn extends ScriptedStandIn<PushServerAnswer> {
  readonly requests: PushServerRecord[] = [];
  private readonly held = new Set<ServerResponse>();

  private constructor(
    private readonly server: http.Server,
    private readonly options: PushStandInOptions,
  ) {
    super({ status: 200 });
  }

  static async start(options: PushStandInOptions = {}): Promise<PushStandIn> {
    const server = http.createServer();
    const standIn = new PushStandIn(server, options);
    server.on('request', (req, res) => standIn.onRequest(req, res));
    await listenOnLoopback(server);
    return standIn;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** `:push_server:` value, with the credentials as userinfo when the server requires them. */
  get url(): string {
    const userinfo = this.options.credentials ? `${this.options.credentials.split(':').map(encodeURIComponent).join(':')}@` : '';
    return `http://${userinfo}127.0.0.1:${this.port}`;
  }

  delivered(): PushServerRecord[] {
    return this.requests.filter((r) => r.status === 200 || r.status === 204);
  }

  async close(): Promise<void> {
    for (const res of this.held) res.destroy();
    await closeServer(this.server);
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    void readBody(req).then((body) => {
      const path = req.url ?? '';
      const auth = String(req.headers.authorization ?? '');
      const record: PushServerRecord = {
        pin: path.startsWith('/messageQueue/') ? decodeURIComponent(path.slice('/messageQueue/'.length)) : '',
        method: req.method ?? '',
        path,
        contentType: String(req.headers['content-type'] ?? ''),
        credentials: auth.startsWith('Basic ') ? Buffer.from(auth.slice(6), 'base64').toString('utf8') : undefined,
        body,
      };
      this.requests.push(record);
      if (this.options.credentials && record.credentials !== this.options.credentials) return this.respond(record, res, { status: 401 });
      if (req.method !== 'POST' || !record.pin) return this.respond(record, res, { status: 404 });
      if (!record.contentType.startsWith('application/json')) return this.respond(record, res, { status: 400 });
      try {
        JSON.parse(record.body);
      } catch {
        return this.respond(record, res, { status: 400 });
      }
      this.respond(record, res, this.answers.pick(record.pin));
    });
  }

  private respond(record: PushServerRecord, res: ServerResponse, answer: PushServerAnswer): void {
    if ('stall' in answer) {
      this.held.add(res);
      res.on('close', () => this.held.delete(res));
      return;
    }
    record.status = answer.status;
    const headers: Record<string, string> = {};
    if (answer.retryAfter !== undefined) headers['retry-after'] = String(answer.retryAfter);
    res.writeHead(answer.status, headers);
    res.end();
  }
}
