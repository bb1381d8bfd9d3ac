// The console in a real browser (Debian's chromium, driven by playwright-core) against a real
// daemon: a real redis-server, capture on, live delivery to the loopback APNs stand-in. Loading the
// page, a wrong token, the status, a user's search and its explanation, the ping form and its
// result; the page never shows a whole device token or the API token. It saves a screenshot:
// CONSOLE_SCREENSHOT=docs/console.png npx vitest run test/console.test.ts refreshes the README's.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDaemon, type Daemon } from '../src/daemon.js';
import {
  ApnsStandIn,
  apnsTokenKey,
  buildSettings,
  createUser,
  deviceSync,
  hexToken,
  pushObjects,
  registerClient,
  startRedisServer,
  waitUntil,
  type RedisServerProcess,
} from '../src/kit/index.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const TOKEN = 'console-test-api-token-7f3a';
const TOPIC = 'com.example.console';
const ALICE_IPHONE = hexToken(0xa11ce);
const BOB_IPHONE = hexToken(0xb0b);
/** Where the screenshot goes (the README's is docs/console.png). */
const SCREENSHOT = process.env.CONSOLE_SCREENSHOT;

let server: RedisServerProcess;
let redis: Redis;
let standIn: ApnsStandIn;
let daemon: Daemon;
let base: string;
let context: BrowserContext;
let page: Page;
const dirs: string[] = [];
const pageErrors: string[] = [];

/**
 * The user's pings that have finished. A ping running longer than a moment is in the user's list
 * already (status running): waiting for the list alone could go on before the ping is done.
 */
async function finishedPings(user: string): Promise<number> {
  return (await daemon.history.forUser(user)).filter((p) => p.status === 'succeeded' || p.status === 'failed').length;
}

function scratch(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

beforeAll(async () => {
  server = await startRedisServer();
  redis = new Redis(server.port, '127.0.0.1');
  const key = apnsTokenKey();
  standIn = await ApnsStandIn.start({ token: key, topics: [TOPIC] });
  // bob's phone was uninstalled: APNs says so, rhopush marks the token dead and skips it afterwards.
  standIn.answerAlways(BOB_IPHONE, { status: 410, reason: 'Unregistered' });
  // Its first answer comes late: the ping is listed as running before it finishes (the waits below
  // must wait for it to finish, not only to be listed).
  standIn.answerNext(BOB_IPHONE, { delayMs: 400, then: { status: 410, reason: 'Unregistered' } });
  const settings = buildSettings(
    {
      redis: server.port,
      apiToken: TOKEN,
      delivery: 'live',
      apns: { endpoint: standIn, key, topic: TOPIC },
      rhopush: { canary_interval_ms: 200 },
    },
    scratch('rhopush-console-settings-'),
  );
  daemon = createDaemon({ settings });
  await daemon.start();
  base = `http://127.0.0.1:${daemon.apiAddress!.port}`;

  await createUser(redis, 'alice');
  await registerClient(redis, 'alice', { id: 'alice-iphone', device_type: 'APPLE', device_pin: ALICE_IPHONE, phone_id: 'iphone-alice' });
  await createUser(redis, 'bob');
  await registerClient(redis, 'bob', { id: 'bob-iphone', device_type: 'APPLE', device_pin: BOB_IPHONE, phone_id: 'iphone-bob' });
  // A plugin write for each, then alice's own sync and a write to a source that never pings. One
  // after the other: pings of one batch start at the same moment, and the list below is in order.
  await pushObjects(redis, 'alice', 'Product', { '1': { name: 'Widget', price: '9.99' } });
  await waitUntil(async () => (await finishedPings('alice')) === 1, { what: "alice's first ping finished and recorded" });
  await pushObjects(redis, 'bob', 'Product', { '1': { name: 'Gadget', price: '19.99' } });
  await waitUntil(async () => (await finishedPings('bob')) === 1, { what: "bob's first ping finished and recorded" });
  await deviceSync(redis, 'alice', 'alice-iphone', 'Product', { '1': { name: 'Widget', price: '8.99' } });
  await pushObjects(redis, 'alice', 'Note', { n1: { title: 'Call the supplier' } });
  await pushObjects(redis, 'bob', 'Contact', { c1: { name: 'Carol' } });
  await waitUntil(async () => (await finishedPings('bob')) === 2 && (await daemon.history.decisionsOf('alice')).length === 2, {
    what: "bob's second ping finished and alice's two decisions recorded",
    timeoutMs: 10_000,
  });

  context = await chromium.launchPersistentContext(scratch('rhopush-console-browser-'), {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1360, height: 900 },
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('console', (message) => {
    // The browser logs the wrong token's 422 as a failed load: that one is the test's own doing.
    if (message.type() === 'error' && !/status of 422/.test(message.text())) pageErrors.push(message.text());
  });
});

afterAll(async () => {
  await context?.close();
  redis?.disconnect();
  await daemon?.stop();
  await standIn?.close();
  await server?.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** What the functions run in the page use (the tests compile without the DOM's types). */
interface BrowserGlobals {
  document: { querySelector(selector: string): { textContent: string | null } | null };
  sessionStorage: { length: number };
}

// The first element the selector matches, as document.querySelector finds it.
const text = async (selector: string) => (await page.locator(selector).first().innerText()).trim();

/** Waits until the element's text matches (the page updates after its calls come back). */
async function untilText(selector: string, pattern: RegExp): Promise<string> {
  await page.waitForFunction(
    ([sel, source, flags]) =>
      new RegExp(source!, flags).test((globalThis as unknown as BrowserGlobals).document.querySelector(sel!)?.textContent ?? ''),
    [selector, pattern.source, pattern.flags],
    { timeout: 10_000 },
  );
  return text(selector);
}

describe('the console in chromium', () => {
  it('loads without a token and asks for it; the data stays hidden', async () => {
    const res = await page.goto(`${base}/console`);
    expect(res?.status()).toBe(200);
    expect(await page.title()).toBe('rhopush console');
    expect(await page.locator('#token').isVisible()).toBe(true);
    expect(await page.locator('#main').isHidden()).toBe(true);
    expect(await text('#token-message')).toMatch(/^Enter rhopush's API token/);
  });

  it('a wrong token shows a clear message and nothing else', async () => {
    await page.fill('#token', 'not-the-token');
    await page.click('#token-form button[type=submit]');
    const message = await untilText('#token-message', /refused/);
    expect(message).toBe(
      'The token was refused (Invalid/missing API user). Use :api_token: from settings.yml, or the API token of a RhoConnect admin user.',
    );
    expect(await page.locator('#token-message').getAttribute('class')).toContain('error');
    expect(await page.locator('#main').isHidden()).toBe(true);
    expect(await page.locator('#token').inputValue()).toBe('');
  });

  it('with the token: capture per node, throughput and queue, the latest pings with their status', async () => {
    await page.fill('#token', TOKEN);
    await page.click('#token-form button[type=submit]');
    await page.locator('#main').waitFor({ state: 'visible', timeout: 10_000 });
    expect(await page.locator('#token-form').isHidden()).toBe(true);
    expect(await text('#session')).toMatch(/^Connected with the API token/);
    const node = await untilText('#capture tbody tr', /round trip/);
    expect(node).toMatch(new RegExp(`^127\\.0\\.0\\.1:${server.port}\\s+held\\s+yes\\s+[\\d.]+ ms round trip$`));
    const figures = await text('#figures');
    expect(figures).toMatch(/Queue depth\s+0 in ping/);
    expect(figures).toMatch(/Delivery\s+live/);
    expect(figures).toMatch(/History\s+72 h, 100 per user/);
    // The latest pings come after the status: the table is written at once when they do.
    await untilText('#latest tbody', /alice/);
    const rows = await page.locator('#latest tbody tr').allInnerTexts();
    expect(rows).toHaveLength(3);
    // Newest first: bob's second ping skipped his dead token, his first found it dead, alice's was delivered.
    expect(rows[0]).toMatch(/\bauto\s+bob\s+Contact\s+succeeded\s+1 skipped-dead$/);
    expect(rows[1]).toMatch(/\bauto\s+bob\s+Product\s+succeeded\s+1 dead$/);
    expect(rows[2]).toMatch(/\bauto\s+alice\s+Product\s+succeeded\s+1 sent$/);
    expect(await text('#status-time')).toMatch(/Totals since start: 3 pings, 3 device pushes, 3 changes\.$/);
  });

  it("a user search shows the user's devices, the verdict, what happened and why", async () => {
    await page.fill('#user', 'alice');
    await page.click('#user-form button[type=submit]');
    await page.locator('#user-result').waitFor({ state: 'visible', timeout: 10_000 });
    const verdict = await untilText('#verdict', /alice's/);
    expect(verdict).toMatch(/^alice's iPhone …11ce: last ping \d\d:\d\d:\d\d for Product, delivered \(APNs 200\)$/);
    expect(await page.locator('#devices tbody tr').allInnerTexts()).toEqual([
      expect.stringMatching(/^iPhone 000000…11ce\s+alice-iphone\s+registered$/),
    ]);
    const events = await page.locator('#events > li').allInnerTexts();
    expect(events.map((e) => e.replace(/^\d\d:\d\d:\d\d\s*/, '').split('\n')[0])).toEqual([
      'Note: plugin write, push_notify off → no ping',
      "Product: device's sync → no ping",
      expect.stringMatching(/^Product: plugin write → pinged — \w+ succeeded$/),
    ]);
    expect(events[2]).toContain('iPhone …11ce: delivered (APNs 200)');
    const sources = await page.locator('#sources li').allInnerTexts();
    expect(sources).toContain('no ping Catalog: app-partitioned → never pings');
    expect(sources).toContain('no ping Note: push_notify is off in settings.yml → plugin writes do not ping');

    await page.fill('#user', 'bob');
    await page.click('#user-form button[type=submit]');
    const bob = await untilText('#verdict', /^bob's/);
    expect(bob).toMatch(
      /^bob's iPhone …0b0b: last ping \d\d:\d\d:\d\d for Contact, not sent: the token was marked dead \(Unregistered since .*\); its token was marked dead \d\d:\d\d:\d\d \(Unregistered\): later pings skip it until the device registers a new one$/,
    );
    expect(await text('#devices tbody')).toMatch(/token dead since .* \(Unregistered\)/);

    await page.fill('#user', 'nobody');
    await page.click('#user-form button[type=submit]');
    expect(await untilText('#user-message', /not a RhoConnect user/)).toBe('nobody is not a RhoConnect user.');
    expect(await text('#verdict')).toBe('nobody is not a RhoConnect user (no user:nobody:rho__id): pings find no device to send to');
  });

  it('the ping form sends a ping and shows its id and status; the device gets the message', async () => {
    await page.fill('#ping-users', 'alice');
    await page.fill('#ping-sources', 'Product, Contact');
    await page.fill('#ping-message', 'Prices changed: sync now');
    await page.click('#ping-form button[type=submit]');
    const result = await untilText('#ping-result', /succeeded/);
    const id = /^Ping (\w+): succeeded/.exec(result)?.[1];
    expect(id, result).toBeDefined();
    expect(result).toMatch(/1 device push for Product, Contact/);
    expect(result).toMatch(/alice: apple 000000…11ce sent/);
    const record = await daemon.history.get(id!);
    expect(record).toMatchObject({ id, status: 'succeeded', trigger: 'rest', users: ['alice'], sources: ['Product', 'Contact'] });
    const delivered = standIn.delivered().filter((r) => r.token === ALICE_IPHONE);
    expect(JSON.parse(delivered.at(-1)!.body)).toMatchObject({
      aps: { alert: 'Prices changed: sync now' },
      do_sync: ['Product', 'Contact'],
    });
    // The new ping heads the latest pings (reloaded after the result is shown).
    expect((await untilText('#latest tbody tr', new RegExp(id!))).split(/\s+/)).toContain(id);
  });

  it('shows a whole record when a ping id is chosen', async () => {
    await page.locator('#ping-result button.link').click();
    await page.locator('#record').waitFor({ state: 'visible', timeout: 10_000 });
    const fields = await text('#record-fields');
    expect(fields).toMatch(/Status\s+succeeded/);
    expect(fields).toMatch(/Message\s+Prices changed: sync now/);
    expect(await text('#record-devices')).toMatch(/^000000…11ce alice \(apple\): sent$/);
  });

  it('saves a screenshot of the console in use', async () => {
    await page.fill('#user', 'alice');
    await page.click('#user-form button[type=submit]');
    await untilText('#verdict', /^alice's/);
    const path = SCREENSHOT ?? join(scratch('rhopush-console-shot-'), 'console.png');
    await page.screenshot({ path, fullPage: true });
    const png = readFileSync(path);
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect(png.length).toBeGreaterThan(10_000);
  });

  it('never shows a whole device token or the API token, and the page raised no error', async () => {
    const html = await page.content();
    for (const secret of [ALICE_IPHONE, BOB_IPHONE, TOKEN]) expect(html).not.toContain(secret);
    expect(pageErrors).toEqual([]);
  });

  it('forgets the token on request', async () => {
    await page.click('#forget');
    expect(await page.locator('#main').isHidden()).toBe(true);
    expect(await page.locator('#token').isVisible()).toBe(true);
    expect(await page.evaluate(() => (globalThis as unknown as BrowserGlobals).sessionStorage.length)).toBe(0);
    expect(await text('#token-message')).toBe('Token forgotten. Enter it again to see the console.');
  });
});
