// A broadcast to 20,000 tokens against a server enforcing 1000 concurrent streams per connection
// (what APNs allows). @parse/node-apn used naively opens one stream per token at once and loses
// pushes; rhopush's adapter bounds in-flight requests per connection and delivers every one.
// Counts are asserted, never times (performance is `npm run bench`).
import apn from '@parse/node-apn';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApnsAdapter } from '../src/push/apns/apns.js';
import { silentLogger } from '../src/logger.js';
import { ApnsStandIn, apnsTokenKey, buildSettings, hexToken } from '../src/kit/index.js';
import { ping, pushRequest, useScratchDir } from './helpers/delivery.js';

const TOKENS = 20_000;
const STREAM_LIMIT = 1000;
const TOPIC = 'com.example.rhodes';
const tokens = Array.from({ length: TOKENS }, (_, i) => hexToken(i + 1));

describe(`APNs fan-out to ${TOKENS} tokens, server limit ${STREAM_LIMIT} streams`, () => {
  const dir = useScratchDir();
  const key = apnsTokenKey();
  let naiveServer: ApnsStandIn;
  let rhopushServer: ApnsStandIn;

  beforeAll(async () => {
    naiveServer = await ApnsStandIn.start({ token: key, maxConcurrentStreams: STREAM_LIMIT, relay: false });
    rhopushServer = await ApnsStandIn.start({ token: key, maxConcurrentStreams: STREAM_LIMIT, relay: false });
  });
  afterAll(async () => {
    await naiveServer.close();
    await rhopushServer.close();
  });

  it('naive @parse/node-apn (one stream per token at once) loses pushes', { timeout: 120_000 }, async () => {
    const provider = new apn.Provider({
      token: { key: key.pem, keyId: key.keyId, teamId: key.teamId },
      address: naiveServer.address,
      port: naiveServer.port,
      ca: [naiveServer.ca],
    });
    const notification = new apn.Notification();
    notification.rawPayload = { aps: { 'content-available': 1 }, do_sync: ['Product'] };
    notification.topic = TOPIC;
    notification.pushType = 'background';
    notification.priority = 5;
    const result = await provider.send(notification, tokens);
    await provider.shutdown();
    // Every token is accounted for, but far from all arrive: the server refuses streams beyond its
    // limit and ends the connection, taking the accepted ones with it.
    expect(result.sent.length + result.failed.length).toBe(TOKENS);
    expect(result.sent.length).toBeLessThan(TOKENS);
    expect(result.failed.length).toBeGreaterThan(0);
  });

  it("rhopush's adapter delivers every push, never above the server's stream limit", { timeout: 120_000 }, async () => {
    // Defaults: 2 connections, at most 900 requests in flight on each.
    const settings = buildSettings({ delivery: 'live', apns: { endpoint: rhopushServer, key, topic: TOPIC } }, dir());
    const adapter = new ApnsAdapter(() => settings, silentLogger);
    const p = ping({ sources: ['Product'] });
    try {
      const results = await Promise.all(tokens.map((t) => adapter.send(pushRequest('apple', t, p))));
      expect(results.filter((r) => r.outcome === 'sent')).toHaveLength(TOKENS);
    } finally {
      await adapter.close();
    }
    const delivered = new Set(rhopushServer.delivered().map((r) => r.token));
    expect(delivered.size).toBe(TOKENS);
    expect(rhopushServer.requests).toHaveLength(TOKENS);
    expect(rhopushServer.maxOpenStreams).toBeLessThanOrEqual(900);
    expect(rhopushServer.connections).toBeLessThanOrEqual(2);
  });
});

describe('APNs fan-out to a server that allows fewer streams than configured', () => {
  const dir = useScratchDir();
  const key = apnsTokenKey();
  let server: ApnsStandIn;

  beforeAll(async () => {
    server = await ApnsStandIn.start({ token: key, maxConcurrentStreams: 40, relay: false });
  });
  afterAll(() => server.close());

  it("follows the server's SETTINGS (40 streams), not the configured 900, and delivers all", async () => {
    const settings = buildSettings({ delivery: 'live', apns: { endpoint: server, key, topic: TOPIC, extra: { connections: 1 } } }, dir());
    const adapter = new ApnsAdapter(() => settings, silentLogger);
    const p = ping({ sources: ['Product'] });
    try {
      const results = await Promise.all(tokens.slice(0, 2000).map((t) => adapter.send(pushRequest('apple', t, p))));
      expect(results.filter((r) => r.outcome === 'sent')).toHaveLength(2000);
    } finally {
      await adapter.close();
    }
    expect(server.delivered()).toHaveLength(2000);
    expect(server.maxOpenStreams).toBeLessThanOrEqual(40);
    expect(server.connections).toBe(1);
  });
});
