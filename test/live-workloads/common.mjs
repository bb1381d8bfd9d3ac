// Builders shared by the live-parity workloads (plain data; the harness sends the requests).
export const fcm = (pin, phone) => ({
  device_type: 'ANDROID',
  device_push_type: 'fcm',
  device_pin: pin,
  device_port: '100',
  phone_id: phone,
  device_app_id: 'com.example.live',
  device_app_version: '1.0.0',
});
export const apple = (pin) => ({
  device_type: 'APPLE',
  device_pin: Buffer.from(pin.padEnd(32, '.')).toString('hex').slice(0, 64),
  device_port: '100',
  device_app_id: 'com.example.live',
  device_app_version: '1.0.0',
});

let seq = 0;
export const next = () => ++seq;
export const obj = (source) => ({ name: `${source} ${next()}`, price: String(10 + (seq % 90)) });
export const objs = (source, n, prefix) =>
  Object.fromEntries(Array.from({ length: n }, (_, i) => [`${prefix}-${next()}-${i}`, obj(source)]));
export const create = (user, device, source, n = 1) => ({
  op: 'create',
  user,
  device,
  source,
  objects: Object.fromEntries(Array.from({ length: n }, () => [`temp-${next()}`, obj(source)])),
});
export const update = (user, device, source, id) => ({ op: 'update', user, device, source, objects: { [id]: { price: String(next()) } } });
export const del = (user, device, source, id) => ({ op: 'delete', user, device, source, objects: { [id]: { name: 'gone' } } });
export const sync = (user, device, source) => ({ op: 'sync', user, device, source });
export const plugin = (op, source, user, body) => ({ op, source, user, ...body });
export const wait = (ms) => ({ op: 'wait', ms });
export const later = (ms, step) => ({ seq: [wait(ms), step] });
/** Enrolls every device of every user: users in parallel, one user's devices one after another. */
export const enrollAll = (users) => ({
  name: 'setup',
  description: 'Logins, client create and register; no ping.',
  concurrent: true,
  steps: Object.entries(users).map(([user, devices]) => ({ seq: devices.map((_, device) => ({ op: 'enroll', user, device })) })),
});
/** Every device syncs every source once, so later edits and acks have a client document to work on. */
export const syncAll = (users, sources) => ({
  name: 'first-sync',
  description: 'Every device syncs every source once.',
  concurrent: true,
  steps: Object.entries(users).flatMap(([user, devices]) =>
    devices.map((_, device) => ({ seq: sources.map((s) => sync(user, device, s)) })),
  ),
});
