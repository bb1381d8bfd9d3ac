// Gathers FCM messages submitted in the same turn of the event loop into batches of at most 500
// (the most `sendEach` takes), runs a bounded number of batches at once, and hands each submitter
// its own message's result. Every batch settles within its deadline.
import type { FcmMessage } from './fcm-message.js';
import type { FcmSender, FcmSendResult } from './fcm-sender.js';
import { Limiter } from '../../util/limiter.js';

export const FCM_MAX_BATCH = 500;
/** Batches in flight at once; more would only queue on the agent's sockets and run out their deadline there. */
const CONCURRENT_BATCHES = 2;

interface Pending {
  message: FcmMessage;
  resolve: (result: FcmSendResult) => void;
}

export class FcmBatcher {
  private pending: Pending[] = [];
  private scheduled = false;
  private readonly limiter = new Limiter(CONCURRENT_BATCHES);

  constructor(
    readonly sender: FcmSender,
    private readonly deadlineMs: number,
  ) {}

  close(): Promise<void> {
    return this.sender.close();
  }

  submit(message: FcmMessage): Promise<FcmSendResult> {
    return new Promise((resolve) => {
      this.pending.push({ message, resolve });
      if (this.pending.length >= FCM_MAX_BATCH) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, FCM_MAX_BATCH);
      void this.limiter.run(() => this.send(batch));
    }
  }

  private async send(batch: Pending[]): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<FcmSendResult[]>((resolve) => {
      timer = setTimeout(
        () => resolve(batch.map(() => ({ ok: false, code: 'rhopush/timeout', message: `no answer within ${this.deadlineMs} ms` }))),
        this.deadlineMs,
      );
    });
    try {
      const results = await Promise.race([this.sender.sendEach(batch.map((p) => p.message)), deadline]);
      batch.forEach((p, i) =>
        p.resolve(results[i] ?? { ok: false, code: 'rhopush/missing-result', message: 'no result for this message' }),
      );
    } catch (err) {
      batch.forEach((p) => p.resolve({ ok: false, code: 'rhopush/sender-error', message: (err as Error).message }));
    } finally {
      clearTimeout(timer);
    }
  }
}
