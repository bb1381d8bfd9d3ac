// Up-front checks of delivery settings (what `rhopush doctor` reports), on real files.
import { describe, expect, it } from 'vitest';
import { checkDelivery } from '../src/push/delivery-check.js';
import { apnsTokenKey, createTestAuthority, testSettings, useScratchDir, writeIn } from './helpers/delivery.js';

describe('checkDelivery', () => {
  const dir = useScratchDir();

  it('reports missing settings with RhoConnect\'s messages', () => {
    const checks = checkDelivery(testSettings('  :rhopush:\n    :delivery: live\n'));
    expect(checks).toEqual([
      { platform: 'apple', level: 'warn', message: 'Missing `:iphonecertfile:` or `:rhopush: :apns: :token_key:` option in settings/settings.yml' },
      { platform: 'fcm', level: 'warn', message: 'Missing `:fcm_project_id:` option in settings/settings.yml' },
      { platform: 'fcm', level: 'warn', message: 'Missing `:package_name:` option in settings/settings.yml' },
      { platform: 'rhoconnect_push', level: 'warn', message: 'Missing or invalid `:push_server` in settings/settings.yml.' },
    ]);
  });

  it('reads and parses every credential file; names the setting of a broken one', async () => {
    const authority = await createTestAuthority();
    const cert = await authority.clientCertificate('app', 'pw');
    writeIn(dir(), 'push.pem', `${cert.cert.trimEnd()}\n${cert.key}`);
    writeIn(dir(), 'AuthKey.p8', apnsTokenKey().pem);
    writeIn(dir(), 'sa.json', JSON.stringify({ client_email: 'x@y', private_key: apnsTokenKey().pem }));
    writeIn(dir(), 'broken.json', '{');
    const good = testSettings(
      `  :iphonecertfile: push.pem
  :iphonepassphrase: pw
  :iphoneserver: gateway.push.apple.com
  :fcm_project_id: p
  :package_name: com.app
  :push_server: http://app:secret@127.0.0.1:8675/
  :rhopush:
    :apns:
      :token_key: AuthKey.p8
      :key_id: K
      :team_id: T
      :topic: com.app
    :fcm:
      :service_account: sa.json
`,
      { file: `${dir()}/settings.yml` },
    );
    expect(checkDelivery(good)).toEqual([
      { platform: 'apple', level: 'ok', message: 'APNs production at api.push.apple.com:443, auth: token, certificate' },
      { platform: 'fcm', level: 'ok', message: 'FCM project p, package com.app, service account file' },
      { platform: 'rhoconnect_push', level: 'ok', message: 'RhoConnect Push at http://127.0.0.1:8675 with basic auth' },
    ]);

    const bad = {
      ...good,
      push: { ...good.push, iphonePassphrase: 'wrong' },
      rhopush: { ...good.rhopush, fcm: { ...good.rhopush.fcm, serviceAccount: 'broken.json' } },
    };
    const problems = checkDelivery(bad).filter((c) => c.level === 'error');
    expect(problems).toEqual([
      { platform: 'apple', level: 'error', message: expect.stringMatching(/^`:iphonecertfile:`: .*bad decrypt \(wrong passphrase\?\)$/) },
      { platform: 'fcm', level: 'error', message: '`:rhopush: :fcm: :service_account:`: not JSON (expected a service account key file)' },
    ]);
  });
});
