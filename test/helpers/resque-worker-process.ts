// A rhopush daemon in its own process whose device pushes never finish: the Resque tests start it,
// wait until it has a job in hand, and kill it with SIGKILL.
// Usage: node --import tsx test/helpers/resque-worker-process.ts <redis-port> <lease-ms>
import { createDaemon } from '../../src/daemon.js';
import type { PushAdapters } from '../../src/push/registry.js';
import { entrySettings } from './entry-points.js';

const [port, leaseMs] = process.argv.slice(2).map(Number);
const settings = entrySettings(port!, { lease_ms: leaseMs! });
const stuck: PushAdapters = {
  adapterFor: () => ({
    send: () => {
      process.stdout.write('push-in-hand\n');
      return new Promise(() => undefined);
    },
    close: async () => undefined,
  }),
  close: async () => undefined,
};
const daemon = createDaemon({ settings, adapters: stuck, capture: false, http: false });
await daemon.start();
process.stdout.write(`worker ${daemon.worker!.id}\n`);
