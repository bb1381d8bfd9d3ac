// The loopback stand-ins' TLS identity, fixed: a private authority and a server certificate it
// signed for 127.0.0.1, ::1, localhost and the Google hosts the FCM SDK addresses (valid 2025-2125,
// EC P-256). rhopush trusts the stand-ins through `:ca:`, exactly as it would trust a corporate
// proxy: verification stays on. The authority's own key was thrown away once the certificate was
// signed, so nothing else can be issued under it; the server key below is public by design and
// good for nothing but talking to these stand-ins on this machine. Being text, it needs no
// certificate library at run time (`rhopush demo` runs from the package without one).
import { generateKeyPairSync, type KeyObject } from 'node:crypto';

/** A TLS server's key and certificate, and the authority a client must trust to accept it. */
export interface ServerTls {
  /** PKCS#8 private key, PEM. */
  key: string;
  /** X.509 certificate, PEM. */
  cert: string;
  /** The authority that signed `cert` (what `:apns: :ca:` / `:fcm: :ca:` name), PEM. */
  ca: string;
}

/** The authority every stand-in's certificate chains to. */
export const LOOPBACK_CA = `-----BEGIN CERTIFICATE-----
MIIBZjCCAQygAwIBAgIJEKxMVpqPOlnCMAoGCCqGSM49BAMCMCUxIzAhBgNVBAMT
GnJob3B1c2ggbG9vcGJhY2sgYXV0aG9yaXR5MCAXDTI1MDEwMTAwMDAwMFoYDzIx
MjUwMTAxMDAwMDAwWjAlMSMwIQYDVQQDExpyaG9wdXNoIGxvb3BiYWNrIGF1dGhv
cml0eTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABGV0R7JEk/DmOR9zBGx0YLO7
gI17Hkho3WMD5MnUFd/ZJn/8WtNWvlDK7arCHxW708FnEd1o76xe+P+QMll3+mej
IzAhMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgGGMAoGCCqGSM49BAMC
A0gAMEUCIQDlND1texu405/FiSqH/s1+1ftx78W0+fqx6RkDnLoo/wIgVGeD5OIf
3yLQGPT0Pgm++1m7ZXr/M+0CDJyP1cU//kc=
-----END CERTIFICATE-----
`;

/** What every stand-in serves unless given another identity. */
export const LOOPBACK_TLS: ServerTls = {
  key: `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgZWP0pMH/mV92mZnB
xxPct0+d1GBoyCEz/o5+mjbrP22hRANCAASUGgXVg7zAjeclzwaUWUj9b4kWGRhg
xymKYvFHBPAtmYjlvcTqMj/xnk/QATpSJU2gv6tpIy3KMiA8Di7poNbx
-----END PRIVATE KEY-----
`,
  cert: `-----BEGIN CERTIFICATE-----
MIIB5jCCAYygAwIBAgIJRDyrMzvM/VAbMAoGCCqGSM49BAMCMCUxIzAhBgNVBAMT
GnJob3B1c2ggbG9vcGJhY2sgYXV0aG9yaXR5MCAXDTI1MDEwMTAwMDAwMFoYDzIx
MjUwMTAxMDAwMDAwWjAUMRIwEAYDVQQDEwlsb2NhbGhvc3QwWTATBgcqhkjOPQIB
BggqhkjOPQMBBwNCAASUGgXVg7zAjeclzwaUWUj9b4kWGRhgxymKYvFHBPAtmYjl
vcTqMj/xnk/QATpSJU2gv6tpIy3KMiA8Di7poNbxo4GzMIGwMAkGA1UdEwQCMAAw
CwYDVR0PBAQDAgWgMBMGA1UdJQQMMAoGCCsGAQUFBwMBMIGABgNVHREEeTB3ggls
b2NhbGhvc3SHBH8AAAGHEAAAAAAAAAAAAAAAAAAAAAGCEmZjbS5nb29nbGVhcGlz
LmNvbYIVb2F1dGgyLmdvb2dsZWFwaXMuY29tghJ3d3cuZ29vZ2xlYXBpcy5jb22C
E2FjY291bnRzLmdvb2dsZS5jb20wCgYIKoZIzj0EAwIDSAAwRQIgP5gxTpW9774/
beA/rR0+A9P7bzOFiCkaYflqZ0SayEYCIQCjSiCnI6waTljhG+oFQno4SqgmB877
nYzUCuV3/m99QA==
-----END CERTIFICATE-----
`,
  ca: LOOPBACK_CA,
};

/** An APNs provider token key (a `.p8` file: PKCS#8 EC P-256) with its ids, made at run time. */
export interface ApnsTokenKey {
  /** The private key, PEM, as Apple hands out `AuthKey_<key id>.p8`. */
  pem: string;
  /** Its public half: what the APNs stand-in verifies provider tokens with. */
  publicKey: KeyObject;
  keyId: string;
  teamId: string;
}

export function apnsTokenKey(keyId = 'KEY2RHOPSH', teamId = 'TEAM2RHOPS'): ApnsTokenKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { pem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, publicKey, keyId, teamId };
}
