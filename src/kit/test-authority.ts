// Certificates made at run time, for tests that need ones the fixed loopback identity cannot give:
// APNs client certificates with a chosen common name (RhoConnect's `:iphonecertfile:`), with or
// without a passphrase. Uses `selfsigned`, a development dependency: this module is left out of the
// package and nothing the demo or the daemon runs imports it.
import { generate } from 'selfsigned';

export interface KeyAndCertificate {
  /** PKCS#8 private key, PEM (encrypted when a passphrase was given). */
  key: string;
  /** X.509 certificate, PEM. */
  cert: string;
}

export interface TestAuthority {
  /** The authority's certificate, PEM: what a server verifying client certificates trusts. */
  cert: string;
  /** A client certificate with this common name, signed by this authority. */
  clientCertificate(commonName: string, passphrase?: string): Promise<KeyAndCertificate>;
}

/** EC keys: generated in milliseconds, so every test run gets fresh ones. */
export async function createTestAuthority(name = 'rhopush test authority'): Promise<TestAuthority> {
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
    cert: root.cert,
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
