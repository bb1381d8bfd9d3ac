// Hot reload: real edits of settings.yml (in-place write, rename over, invalid YAML then fixed)
// change the decisions of a live daemon against a real redis-server, without a restart.
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings, sourcePolicy } from '../src/config/index.js';
import { describeChanges, diffSettings, liveSettings } from '../src/config/settings-diff.js';
import { createDaemon, type Daemon } from '../src/daemon.js';
import { createLogger } from '../src/logger.js';
import type { PingResult } from '../src/ping/ping-job.js';
import {
  buildSettings,
  createUser,
  pushObjects,
  registerClient,
  settingsYaml,
  waitUntil,
  type SourceSettings,
  type YamlMap,
} from '../src/kit/index.js';
import { useRedisServer } from './helpers/redis.js';

const redis = useRedisServer();

/** settings.yml with the given per-source push_notify values (and anything else to vary). */
function reloadSettings(
  port: number,
  o: {
    note?: string;
    notePartition?: string;
    productPartition?: string;
    envPushNotify?: string;
    redis?: string;
    listen?: string;
    coalesceMs?: number;
  } = {},
): string {
  return settingsYaml({
    redis: o.redis ?? port,
    sources: {
      Product: { partition: o.productPartition ?? 'user', pushNotify: 'true' },
      Note: { partition: o.notePartition ?? 'user', pushNotify: o.note ?? 'false' },
    },
    apiToken: 'test-admin-token',
    pushNotify: o.envPushNotify ?? 'false',
    listen: o.listen ?? '127.0.0.1:0',
    coalesceMs: o.coalesceMs ?? 20,
    maxDelayMs: 200,
  });
}

describe('hot reload of settings.yml on a running daemon', () => {
  let dir: string;
  let file: string;
  let daemon: Daemon;
  const pings: PingResult[] = [];
  const logLines: Array<Record<string, unknown>> = [];

  const write = (text: string) => writeFileSync(file, text);
  /** Every event written so far received, grouped pings sent and finished. */
  const settle = async () => {
    await daemon.capture!.barrier();
    daemon.window.flushAll();
    await daemon.drain();
  };
  /** Plugin write to one of alice's sources; the sources pinged for it (after settling). */
  const pluginWrite = async (source: string): Promise<string[]> => {
    pings.length = 0;
    await pushObjects(redis.client(), 'alice', source, { [`${Date.now()}`]: { name: 'x' } });
    await settle();
    return pings.flatMap((p) => p.sources);
  };
  const pushNotify = (source: string) => sourcePolicy(daemon.settings, source).pushNotify;
  const logged = (text: string) => logLines.some((l) => String(l.msg).includes(text));

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rhopush-reload-'));
    file = join(dir, 'settings.yml');
    write(reloadSettings(redis.server().port));
    await createUser(redis.client(), 'alice');
    await registerClient(redis.client(), 'alice', {
      id: 'c1',
      device_type: 'APPLE',
      device_pin: 'aa bb cc dd ee ff 00 11',
      phone_id: 'p1',
    });
    const sink = new Writable({
      write(chunk, _enc, done) {
        for (const line of String(chunk).split('\n')) if (line) logLines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    daemon = createDaemon({
      settings: loadSettings(file, { environment: 'test', env: {} }),
      logger: createLogger({ level: 'info', destination: sink }),
      watchSettings: { debounceMs: 20 },
      onPing: (r) => pings.push(r),
    });
    await daemon.start();
  });

  afterAll(async () => {
    await daemon?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts with the file as written: Product pings, Note does not', async () => {
    expect(await pluginWrite('Product')).toEqual(['Product']);
    expect(await pluginWrite('Note')).toEqual([]);
  });

  it('an in-place write turning push_notify on makes the next plugin write ping', async () => {
    write(reloadSettings(redis.server().port, { note: 'true' }));
    await waitUntil(() => pushNotify('Note'), { what: 'Note push_notify on' });
    expect(await pluginWrite('Note')).toEqual(['Note']);
    expect(logged('source Note: push_notify false → true')).toBe(true);
  });

  it('a file renamed over settings.yml (editor or config manager save) turns it off again', async () => {
    const temp = join(dir, '.settings.yml.new');
    writeFileSync(temp, reloadSettings(redis.server().port, { note: 'false' }));
    renameSync(temp, file);
    await waitUntil(() => !pushNotify('Note'), { what: 'Note push_notify off' });
    expect(await pluginWrite('Note')).toEqual([]);
    expect(await pluginWrite('Product')).toEqual(['Product']);
  });

  it('partition_type and the environment default apply live too', async () => {
    write(reloadSettings(redis.server().port, { productPartition: 'app', envPushNotify: 'true', coalesceMs: 30 }));
    await waitUntil(() => sourcePolicy(daemon.settings, 'Product').partitionType === 'app', { what: 'Product app-partitioned' });
    expect(daemon.settings.rhopush.coalesceMs).toBe(30);
    expect(await pluginWrite('Product')).toEqual([]);
    // An unlisted source follows the environment's :push_notify:.
    expect(await pluginWrite('Task')).toEqual(['Task']);
    expect(logged('source Product: partition_type user → app')).toBe(true);
    expect(logged('environment: push_notify false → true')).toBe(true);
  });

  it('invalid YAML keeps the last good settings, says where, and shows a config warning on /healthz', async () => {
    write(reloadSettings(redis.server().port, { note: 'true' }));
    await waitUntil(() => pushNotify('Note'), { what: 'Note push_notify on' });

    write(`:sources:\n  Note:\n    :push_notify: 'false'\n  Product: [unclosed\n:test:\n`);
    const problem = await waitUntil(() => daemon.health().parts.config?.warning, { what: 'config warning' });
    expect(problem).toContain(file);
    expect(problem).toMatch(/settings\.yml:\d+/);
    expect(logLines.some((l) => l.level === 50 && l.file === file && typeof l.line === 'number')).toBe(true);

    // Still the last good settings: Note keeps pinging.
    expect(pushNotify('Note')).toBe(true);
    expect(await pluginWrite('Note')).toEqual(['Note']);

    const { host, port } = daemon.apiAddress!;
    const res = await fetch(`http://${host}:${port}/healthz`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { ok: boolean; parts: Record<string, { warning?: string }>; warnings?: string[] };
    expect(body.ok).toBe(true);
    expect(body.parts.config?.warning).toContain('invalid YAML');
    expect(body.warnings?.[0]).toMatch(/^config: /);
    const metrics = await (await fetch(`http://${host}:${port}/metrics`)).text();
    expect(metrics).toMatch(/^rhopush_config_reloads_total\{result="rejected"\} 1$/m);
    expect(metrics).toMatch(/^rhopush_config_last_reload_ok 0$/m);
  });

  it('a file that parses but does not validate is rejected the same way', async () => {
    write(reloadSettings(redis.server().port, { note: 'false', notePartition: 'everyone' }));
    await waitUntil(() => daemon.health().parts.config?.warning?.includes('user or app'), { what: 'validation warning' });
    expect(pushNotify('Note')).toBe(true);
  });

  it('the fixed file is applied and the warning clears', async () => {
    write(reloadSettings(redis.server().port, { note: 'false' }));
    await waitUntil(() => daemon.health().parts.config?.warning === undefined, { what: 'warning cleared' });
    expect(pushNotify('Note')).toBe(false);
    expect(await pluginWrite('Note')).toEqual([]);
    expect(logged('settings file is valid again')).toBe(true);
  });

  it(':redis: and :listen: changes are logged as needing a restart and left as they were', async () => {
    const before = daemon.settings;
    write(reloadSettings(redis.server().port, { note: 'true', redis: '127.0.0.1:1', listen: '127.0.0.1:1' }));
    await waitUntil(() => pushNotify('Note'), { what: 'Note push_notify on' });
    expect(daemon.settings.redis).toEqual(before.redis);
    expect(daemon.settings.rhopush.listen).toEqual(before.rhopush.listen);
    const restart = logLines.filter((l) => String(l.msg).includes('needs a restart'));
    expect(restart.some((l) => String(l.msg).includes('redis') && String(l.msg).includes('127.0.0.1:1'))).toBe(true);
    expect(restart.some((l) => String(l.msg).includes('listen.port'))).toBe(true);
    // And the daemon still captures from the Redis it started with.
    expect(await pluginWrite('Note')).toEqual(['Note']);
  });

  it('a deleted file keeps the last good settings until it is back', async () => {
    rmSync(file);
    await waitUntil(() => daemon.health().parts.config?.warning?.includes('cannot read'), { what: 'missing-file warning' });
    expect(pushNotify('Note')).toBe(true);
    write(reloadSettings(redis.server().port, { note: 'false' }));
    await waitUntil(() => daemon.health().parts.config?.warning === undefined && !pushNotify('Note'), { what: 'file back' });
  });
});

describe('what a reload logs', () => {
  /** Only what each case sets, besides Product and a Redis. */
  const parse = (env: YamlMap, rhopush?: YamlMap, sources: Record<string, SourceSettings> = {}) =>
    buildSettings({
      redis: 6390,
      sources: { Product: { pushNotify: 'true' }, ...sources },
      pushNotify: null,
      delivery: null,
      listen: null,
      env,
      rhopush,
    });

  it('names sources added and removed, and never shows secrets', () => {
    const before = parse({ api_token: 'old-secret', push_server: 'http://push:pw1@127.0.0.1:8675/', iphonepassphrase: 'hunter2' });
    const after = parse(
      { api_token: 'new-secret', push_server: 'http://push:pw2@127.0.0.1:8675/', iphonepassphrase: 'hunter3' },
      undefined,
      { Order: { pushNotify: 'true' } },
    );
    const { live, restart } = diffSettings(before, after);
    const lines = describeChanges(live);
    expect(restart).toEqual([]);
    expect(lines).toContain('source Order: push_notify false → true, listed false → true');
    expect(lines.join('\n')).toContain('api_token (set) → (changed)');
    expect(lines.join('\n')).toContain('iphonepassphrase (set) → (changed)');
    expect(lines.join('\n')).toContain('push_server http://push:***@127.0.0.1:8675/ → http://push:***@127.0.0.1:8675/');
    for (const secret of ['old-secret', 'new-secret', 'pw1', 'pw2', 'hunter2', 'hunter3']) expect(lines.join('\n')).not.toContain(secret);
  });

  it('keeps restart-only settings as they were started', () => {
    const before = parse({}, { listen: '127.0.0.1:9293', queues: 'ping' });
    const after = parse({}, { listen: '0.0.0.0:9400', queues: 'ping,urgent', coalesce_ms: 250 });
    const { live, restart } = diffSettings(before, after);
    expect(describeChanges(restart)).toEqual([
      'rhopush: listen.host 127.0.0.1 → 0.0.0.0, listen.port 9293 → 9400, queues ["ping"] → ["ping","urgent"]',
    ]);
    expect(describeChanges(live)).toEqual(['rhopush: coalesce_ms 100 → 250']);
    const applied = liveSettings(before, after);
    expect(applied.rhopush.listen).toEqual(before.rhopush.listen);
    expect(applied.rhopush.queues).toEqual(['ping']);
    expect(applied.rhopush.coalesceMs).toBe(250);
  });
});
