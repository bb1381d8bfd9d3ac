// What the loopback stand-ins for APNs, FCM and RhoConnect Push have in common: scripted answers per
// device token, reading a request body, listening on a free loopback port and closing.
import type { Server as NetServer, AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';

/**
 * Answers a stand-in gives, per device token: answers queued for a token come first (in order),
 * then one a token always gets, then the default.
 */
export class AnswerScript<A> {
  private readonly queued = new Map<string, A[]>();
  private readonly standing = new Map<string, A>();

  constructor(private fallback: A) {}

  /** The answer for every request without a scripted one. */
  get byDefault(): A {
    return this.fallback;
  }

  setDefault(answer: A): void {
    this.fallback = answer;
  }

  /** Answers for the next requests to `token`, in order; then the usual answer again. */
  queue(token: string, answers: A[]): void {
    this.queued.set(token, [...(this.queued.get(token) ?? []), ...answers]);
  }

  /** Answer every request to `token` this way (e.g. a token the service reports gone). */
  always(token: string, answer: A): void {
    this.standing.set(token, answer);
  }

  /** The next queued answer for `token`, taken off its queue; undefined when none is queued. */
  takeQueued(token: string): A | undefined {
    const list = this.queued.get(token);
    const next = list?.shift();
    if (list && list.length === 0) this.queued.delete(token);
    return next;
  }

  /** The answer `token` always gets, if one was set. */
  standingFor(token: string): A | undefined {
    return this.standing.get(token);
  }

  /** Queued, else standing, else default. */
  pick(token: string): A {
    return this.takeQueued(token) ?? this.standingFor(token) ?? this.fallback;
  }
}

/** A stand-in whose answers per device token can be scripted (APNs, FCM, RhoConnect Push). */
export abstract class ScriptedStandIn<A> {
  protected readonly answers: AnswerScript<A>;

  protected constructor(usualAnswer: A) {
    this.answers = new AnswerScript(usualAnswer);
  }

  /** Answer for every request without a scripted answer (default: success). */
  answerByDefault(answer: A): void {
    this.answers.setDefault(answer);
  }

  /** Answers for the next requests to `token`, in order; then the usual answer again. */
  answerNext(token: string, ...answers: A[]): void {
    this.answers.queue(token, answers);
  }

  /** Answer every request to `token` this way (e.g. a token the service reports gone). */
  answerAlways(token: string, answer: A): void {
    this.answers.always(token, answer);
  }
}

/**
 * The whole body of a request (an HTTP/1.1 request or an HTTP/2 stream), as text. A request whose
 * connection fails first never resolves: there is nobody left to answer.
 */
export function readBody(request: Readable): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    request.on('data', (c: Buffer) => chunks.push(c));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', () => undefined);
  });
}

/** Listens on a free loopback port and resolves with it. */
export async function listenOnLoopback(server: NetServer): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** Closes a server, its open connections first when it can (HTTP/1.1). */
export async function closeServer(server: NetServer & { closeAllConnections?: () => void }): Promise<void> {
  server.closeAllConnections?.();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}
