/**
 * werift's one-time work, done before a process's first connection waits for it (docs/client.md
 * "Setup time"): the DTLS certificate (werift makes one per process) and one DTLS handshake
 * between werift's own client and server in memory, so that the key exchange, the signatures and
 * their checks and the record protection have run once. Measured in the lab, a process's first
 * connection spent ~200 ms more than the next ones on each werift side, a camera's first viewer
 * after boot and an app's first call. Once per process; a failure only means no warm-up.
 */
import { DtlsClient, DtlsServer, RTCDtlsTransport, type Transport } from 'werift';

let warming: Promise<void> | undefined;

/** Starts the warm-up (once per process); resolves when it is done or gave up (5 s). */
export function warmUp(): Promise<void> {
  warming ??= handshakeInMemory().catch(() => undefined);
  return warming;
}

/** The handshake itself; rejects when it does not complete within 5 s (exported for its test). */
export async function handshakeInMemory(): Promise<void> {
  const cert = await RTCDtlsTransport.SetupCertificate();
  const ends: { client?: Transport; server?: Transport } = {};
  const link = (to: () => Transport | undefined): Transport => ({
    type: 'memory',
    address: { address: '', family: 'IPv4', port: 0 },
    closed: false,
    onData: () => undefined,
    // Delivered on a later turn, as from a socket; the peer's onData is set by werift.
    send: (data) => { setImmediate(() => to()?.onData(Buffer.from(data), { address: '', port: 0 } as never)); return Promise.resolve(); },
    close: () => Promise.resolve(),
  });
  ends.client = link(() => ends.server);
  ends.server = link(() => ends.client);
  const options = { cert: cert.certPem, key: cert.privateKey, signatureHash: cert.signatureHash, srtpProfiles: [1 as const], extendedMasterSecret: true };
  // skipHelloVerify: the patched server's option (patches/werift+0.24.4.patch), as RTCDtlsTransport uses it.
  const server = new DtlsServer({ ...options, transport: ends.server, certificateRequest: true, skipHelloVerify: true } as ConstructorParameters<typeof DtlsServer>[0]);
  const client = new DtlsClient({ ...options, transport: ends.client });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      Promise.all([new Promise<void>((r) => client.onConnect.once(() => r())), new Promise<void>((r) => server.onConnect.once(() => r()))]),
      new Promise<void>((_, reject) => { timer = setTimeout(() => reject(new Error('warm-up timed out')), 5000); timer.unref(); }),
      client.connect().then(() => new Promise<void>(() => undefined)),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
