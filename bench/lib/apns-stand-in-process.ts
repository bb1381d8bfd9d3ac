// The loopback APNs stand-in in its own process, so a dispatch benchmark measures only the
// sending side. Announces APNs' 1000 concurrent streams per connection and checks provider tokens.
// Usage: fork with IPC; sends {port, ca, key: {pem, keyId, teamId}} once listening; answers
// {count: true} with {count} (requests received since the last count); {answerDelayMs: n} makes it
// answer every request n ms after it arrived (APNs over a real network: the round trip); exits on
// {stop: true}.
import { ApnsStandIn, apnsTokenKey } from '../../src/kit/index.js';
import { BENCH_TOPIC } from './devices.js';

const key = apnsTokenKey();
let received = 0;
const standIn = await ApnsStandIn.start({
  token: key,
  topics: [BENCH_TOPIC],
  maxConcurrentStreams: 1000,
  relay: false,
  keepRequests: false,
  onRequest: () => (received += 1),
});
process.on('message', (msg: { count?: boolean; stop?: boolean; answerDelayMs?: number }) => {
  if (msg.answerDelayMs !== undefined) {
    standIn.answerByDefault(msg.answerDelayMs > 0 ? { delayMs: msg.answerDelayMs, then: { status: 200 } } : { status: 200 });
    process.send!({ answerDelayMs: msg.answerDelayMs });
  }
  if (msg.count) {
    process.send!({ count: received });
    received = 0;
  }
  if (msg.stop) void standIn.close().finally(() => process.exit(0));
});
process.send!({ port: standIn.port, ca: standIn.ca, key: { pem: key.pem, keyId: key.keyId, teamId: key.teamId } });
