// An HTTPS agent that connects every request to one configured endpoint (`:rhopush: :fcm:`
// `:address:`/`:port:`), whatever host the URL names, and trusts the configured CA. The TLS server
// name and the certificate check stay those of the URL's host, so verification is never turned off:
// the endpoint must present a certificate for that host signed by the CA (a proxy, or the loopback
// stand-in in tests).
import https from 'node:https';
import type { Duplex } from 'node:stream';
import type { TcpNetConnectOpts } from 'node:net';
import type { ConnectionOptions } from 'node:tls';

export interface Endpoint {
  host: string;
  port: number;
  /** PEM text of the CA to trust; the system CAs when omitted. */
  ca?: string;
}

export class EndpointAgent extends https.Agent {
  constructor(
    private readonly endpoint: Endpoint,
    maxSockets: number,
  ) {
    super({ keepAlive: true, maxSockets, ca: endpoint.ca });
  }

  override createConnection(
    options: TcpNetConnectOpts & ConnectionOptions,
    callback?: (err: Error | null, socket: Duplex) => void,
  ): Duplex {
    const servername = options.servername || options.host;
    const redirected = { ...options, host: this.endpoint.host, port: this.endpoint.port, servername, ca: this.endpoint.ca ?? options.ca };
    // https.Agent's own createConnection does the TLS connect (and session reuse) with these options.
    const create = (https.Agent.prototype as unknown as { createConnection: (o: unknown, cb?: unknown) => Duplex }).createConnection;
    return create.call(this, redirected, callback);
  }
}

/** A keep-alive agent with bounded sockets, for the real endpoint. */
export function boundedAgent(maxSockets: number): https.Agent {
  return new https.Agent({ keepAlive: true, maxSockets });
}
