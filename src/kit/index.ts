// The test, benchmark and demo kit: everything needed to run rhopush for real on one machine with
// nothing configured. Tests, benchmarks, `rhopush demo` and `rhopush replay` use it; the daemon
// never imports it.
//
// - private redis-server processes (redis-server-process.ts; a Redis Cluster in
//   redis-cluster-process.ts, imported directly: left out of the package);
// - loopback stand-ins for APNs (HTTP/2, token or certificate auth), FCM (HTTP v1 and OAuth) and
//   RhoConnect Push, serving the fixed loopback TLS identity (loopback-tls.ts);
// - RhoConnect's writes: users, clients, push_objects, a device's sync and create, on one Redis,
//   several instances or a cluster (rhoconnect-writes.ts);
// - settings.yml from typed options, with the stand-ins' credential files (settings.ts);
// - waiting for something, with a failure that says what (wait.ts).
//
// Certificates with a chosen common name, passphrase or dates come from test-authority.ts
// (development only: it needs `selfsigned`).
export * from './apns-stand-in.js';
export * from './fcm-stand-in.js';
export * from './loopback-tls.js';
export * from './push-stand-in.js';
export * from './redis-server-process.js';
export * from './rhoconnect-writes.js';
export * from './settings.js';
export * from './wait.js';
