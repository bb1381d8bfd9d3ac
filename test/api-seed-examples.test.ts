// The seed document's Ruby, .NET and Java ping examples, byte for byte as those HTTP clients send
// them, over a raw TCP socket to a real rhopush listener.
import { connect } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Daemon } from '../src/daemon.js';
import { DOTNET_EXAMPLE_WARNING } from '../src/api/ping-routes.js';
import { useRedisServer } from './helpers/redis.js';
import { ADMIN_TOKEN, entrySettings, type RecordingAdapters, startDaemon, userWithDevices } from './helpers/entry-points.js';

const redis = useRedisServer();
let daemon: Daemon;
let adapters: RecordingAdapters;
let port: number;

beforeAll(async () => {
  await userWithDevices(redis.client(), 'alice');
  await userWithDevices(redis.client(), 'bob');
  ({ daemon, adapters } = await startDaemon(entrySettings(redis.server().port), { queue: false }));
  port = daemon.apiAddress!.port;
});

afterAll(async () => {
  await daemon?.stop();
});

afterEach(() => adapters.reset());

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Interim responses seen before the final one (e.g. "100 Continue"). */
  interim: number[];
}

/**
 * Sends one HTTP/1.1 request as raw bytes. With `expectContinue`, the body goes only after the
 * server's 100 Continue, as .NET's HttpWebRequest does.
 */
function rawRequest(head: string[], body: string, options: { expectContinue?: boolean } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let buffer = Buffer.alloc(0);
    const interim: number[] = [];
    let bodySent = false;
    const sendBody = () => {
      if (bodySent) return;
      bodySent = true;
      socket.write(body);
    };
    socket.setTimeout(10_000, () => socket.destroy(new Error('no answer within 10 s')));
    socket.on('error', reject);
    socket.on('connect', () => {
      socket.write(`${head.join('\r\n')}\r\n\r\n`);
      if (!options.expectContinue) sendBody();
    });
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        const lines = buffer.subarray(0, end).toString('latin1').split('\r\n');
        const status = Number(lines[0]!.split(' ')[1]);
        if (status >= 100 && status < 200) {
          interim.push(status);
          buffer = buffer.subarray(end + 4);
          if (status === 100) sendBody();
          continue;
        }
        const headers: Record<string, string> = {};
        for (const line of lines.slice(1)) {
          const colon = line.indexOf(':');
          headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
        }
        const length = Number(headers['content-length'] ?? 0);
        const rest = buffer.subarray(end + 4);
        if (rest.length < length) return;
        socket.end();
        resolve({ status, headers, body: rest.subarray(0, length).toString('utf8'), interim });
        return;
      }
    });
  });
}

function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

describe("the seed's Ruby example (RestClient, JSON body, token header)", () => {
  // ping_params = {:api_token => token, :user_id => [array_of_users], :sources => source_name,
  //   :message => 'hello world', :vibrate => 2000, :sound => 'hello.mp3'}
  // RestClient.post("#{server}/rc/v1/users/ping", ping_params.to_json,
  //   {:content_type => :json, 'X-RhoConnect-API-TOKEN' => @api_token})
  const rubyRequest = (json: string, headerToken: string) => [
    'POST /rc/v1/users/ping HTTP/1.1',
    'Accept: */*',
    'User-Agent: rest-client/2.1.0 (linux x86_64) ruby/3.1.2p20',
    'Content-Type: application/json',
    // Net::HTTP capitalises header names when it writes them.
    `X-Rhoconnect-Api-Token: ${headerToken}`,
    `Content-Length: ${utf8Length(json)}`,
    'Accept-Encoding: gzip;q=1.0,deflate;q=0.6,identity;q=0.3',
    `Host: 127.0.0.1:${port}`,
  ];

  it('pings every device of the users with the message, vibrate and sound', async () => {
    const json = `{"api_token":"${ADMIN_TOKEN}","user_id":["alice","bob"],"sources":"Product","message":"hello world","vibrate":2000,"sound":"hello.mp3"}`;
    const res = await rawRequest(rubyRequest(json, ADMIN_TOKEN), json);
    expect(res.status).toBe(200);
    expect(adapters.pushes).toHaveLength(4);
    expect(new Set(adapters.pushes.map((p) => p.user))).toEqual(new Set(['alice', 'bob']));
    for (const push of adapters.pushes) {
      expect(push.ping).toEqual({
        users: ['alice', 'bob'],
        sources: ['Product'],
        message: 'hello world',
        sound: 'hello.mp3',
        vibrate: '2000',
        badge: undefined,
      });
    }
  });

  it('works with the literal `[array_of_users]` (a list inside a list) too', async () => {
    const json = `{"api_token":"${ADMIN_TOKEN}","user_id":[["alice","bob"]],"sources":"Product","message":"hello world","vibrate":2000,"sound":"hello.mp3"}`;
    const res = await rawRequest(rubyRequest(json, ADMIN_TOKEN), json);
    expect(res.status).toBe(200);
    expect(adapters.pushes).toHaveLength(4);
  });

  it("takes @api_token from the header when the body's token is something else", async () => {
    const json = `{"api_token":"a-user-token","user_id":"alice","sources":"Product","message":"hello world","vibrate":2000,"sound":"hello.mp3"}`;
    const res = await rawRequest(rubyRequest(json, ADMIN_TOKEN), json);
    expect(res.status).toBe(200);
    expect(adapters.pushes).toHaveLength(2);
  });
});

describe("the seed's .NET example (HttpWebRequest, JSON body, token header)", () => {
  // Uri address = new Uri(_endpoint_url + "/rc/v1/users /ping");  (.NET escapes the space)
  // request.ContentType = "application/json"; request.Method = "POST";
  // request.Headers.Add("X-RhoConnect-API-TOKEN", _api_token);
  const json = '{"user_id":["alice","bob"],"source_id":"Product","message":"hello world","vibrate":"2000","sound":"hello.mp3"}';
  const dotnetRequest = (path: string) => [
    `POST ${path} HTTP/1.1`,
    'Content-Type: application/json',
    `X-RhoConnect-API-TOKEN: ${ADMIN_TOKEN}`,
    `Host: 127.0.0.1:${port}`,
    `Content-Length: ${utf8Length(json)}`,
    'Expect: 100-continue',
    'Connection: Keep-Alive',
  ];

  it('works as written, the URL with its space included, and says which path to use', async () => {
    const res = await rawRequest(dotnetRequest('/rc/v1/users%20/ping'), json, { expectContinue: true });
    expect(res.interim).toEqual([100]);
    expect(res.status).toBe(200);
    expect(res.headers.warning).toBe(DOTNET_EXAMPLE_WARNING);
    expect(adapters.pushes).toHaveLength(4);
    expect(adapters.pushes[0]!.ping).toMatchObject({ sources: ['Product'], message: 'hello world', vibrate: '2000', sound: 'hello.mp3' });
  });

  it('works with the corrected URL, without a warning', async () => {
    const res = await rawRequest(dotnetRequest('/rc/v1/users/ping'), json, { expectContinue: true });
    expect(res.status).toBe(200);
    expect(res.headers.warning).toBeUndefined();
    expect(adapters.pushes).toHaveLength(4);
  });
});

describe("the seed's Java example (RestTemplate, JSON body, token in the body)", () => {
  // hash.put("api_token", apiToken); hash.put("source_id", sourceName); hash.put("user_id", partition);
  // hash.put("message", "hello world"); hash.put("vibrate", "2000"); hash.put("sound", "hello.mp3");
  // restTemplate.exchange(endpointUrl + "/rc/v1/users/ping", HttpMethod.POST, entity, String.class)
  it('pings the user and answers 200', async () => {
    const json = `{"sound":"hello.mp3","api_token":"${ADMIN_TOKEN}","user_id":"alice","source_id":"Product","message":"hello world","vibrate":"2000"}`;
    const res = await rawRequest(
      [
        'POST /rc/v1/users/ping HTTP/1.1',
        'Accept: text/plain, application/json, application/*+json, */*',
        'Content-Type: application/json',
        'User-Agent: Java/17.0.10',
        `Host: 127.0.0.1:${port}`,
        'Connection: keep-alive',
        `Content-Length: ${utf8Length(json)}`,
      ],
      json,
    );
    expect(res.status).toBe(200);
    expect(adapters.pushes).toHaveLength(2);
    expect(adapters.pushes.every((p) => p.user === 'alice')).toBe(true);
    expect(adapters.pushes[0]!.ping).toMatchObject({
      users: ['alice'],
      sources: ['Product'],
      message: 'hello world',
      vibrate: '2000',
      sound: 'hello.mp3',
    });
  });
});

describe('RestClient with a hash (form-encoded), as older Ruby backends call it', () => {
  it('pings the users', async () => {
    const body = `api_token=${ADMIN_TOKEN}&user_id[]=alice&user_id[]=bob&sources=all&message=hello%20world&vibrate=2000`;
    const res = await rawRequest(
      [
        'POST /api/ping HTTP/1.1',
        'Accept: */*',
        'User-Agent: rest-client/2.1.0 (linux x86_64) ruby/3.1.2p20',
        'Content-Type: application/x-www-form-urlencoded',
        `Content-Length: ${utf8Length(body)}`,
        `Host: 127.0.0.1:${port}`,
      ],
      body,
    );
    expect(res.status).toBe(200);
    expect(res.headers.warning).toBe('Use of the POST /api/ping is deprecated. Use Rhoconnect API v1 instead.');
    expect(adapters.pushes).toHaveLength(4);
    expect(adapters.pushes[0]!.ping).toMatchObject({ sources: ['all'], message: 'hello world', vibrate: '2000' });
  });
});
