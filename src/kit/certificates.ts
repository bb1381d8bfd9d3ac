// Certificates made at run time for the loopback stand-ins (tests, `rhopush demo`, benchmarks).
// One private authority signs the servers' and clients' certificates, so rhopush trusts the
// stand-ins through `ca` exactly as it would trust a corporate proxy: verification stays on.
import { generate } from 'selfsigned';

export interface KeyAndCertificate {
  /** PKCS#8 private key, PEM. */
  key: string;
  /** X.509 certificate, PEM. */
  cert: string;
}

export interface TestAuthority extends KeyAndCertificate {
  /** A server certificate valid for `hosts` (DNS names or IP addresses), signed by this authority. */
  serverCertificate(hosts: string[]): Promise<KeyAndCertificate>;
  /** A client certificate with this common name, signed by this authority (APNs certificate auth). */
  clientCertificate(commonName: string, passphrase?: string): Promise<KeyAndCertificate>;
}

const IPV4 = /^\d{1,3}(?:\.\d{1,3}){3}$/;

/** EC keys: generated in milliseconds, so every test run gets fresh ones. */
export async function createTestAuthority(name = 'rhopush loopback authority'): Promise<TestAuthority> {
  const root = await generate([{ name: 'commonName', value: name }], {
    keyType: 'ec',
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  const signer = { key: root.private, cert: root.cert };
  return {
    key: root.private,
    cert: root.cert,
    async serverCertificate(hosts) {
      const issued = await generate([{ name: 'commonName', value: hosts[0] ?? 'localhost' }], {
        keyType: 'ec',
        algorithm: 'sha256',
        ca: signer,
        extensions: [
          { name: 'basicConstraints', cA: false },
          { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
          { name: 'extKeyUsage', serverAuth: true },
          {
            name: 'subjectAltName',
            altNames: hosts.map((h) => (IPV4.test(h) || h.includes(':') ? { type: 7 as const, ip: h } : { type: 2 as const, value: h })),
          },
        ],
      });
      return { key: issued.private, cert: issued.cert };
    },
    async clientCertificate(commonName, passphrase) {
      const issued = await generate([{ name: 'commonName', value: commonName }], {
        keyType: 'ec',
        algorithm: 'sha256',
        ca: signer,
        passphrase,
        extensions: [
          { name: 'basicConstraints', cA: false },
          { name: 'keyUsage', digitalSignature: true },
          { name: 'extKeyUsage', clientAuth: true },
        ],
      });
      return { key: issued.private, cert: issued.cert };
    },
  };
}
