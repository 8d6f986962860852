/**
 * werift's DTLS handshake as patched (patches/werift+0.24.4.patch, docs/client.md "Loss and
 * authentication in the handshake"), between its real client and server classes joined by an
 * in-memory link that loses or alters the datagrams a test chooses:
 * - loss: any one datagram of either side's flights lost, and a seeded 15 % loss both ways, and
 *   the handshake still completes (unpatched, a lost Certificate, ClientKeyExchange,
 *   CertificateVerify or Finished from the client, or a lost CertificateRequest from the server,
 *   failed it for good: RFC 6347 §4.2.4 takes a flight as a whole);
 * - authentication: a ServerKeyExchange or CertificateVerify whose signature does not verify with
 *   the certificate sent fails the handshake (RFC 5246 §7.4.3, §7.4.8) instead of connecting.
 * The datagrams are one record each, in the order werift sends them: the client's ClientHello (0),
 * then its flight 5 — Certificate (1), ClientKeyExchange (2), CertificateVerify (3),
 * ChangeCipherSpec (4), Finished (5); the server's flight 4 — ServerHello (0), Certificate (1),
 * ServerKeyExchange (2), CertificateRequest (3), ServerHelloDone (4), then ChangeCipherSpec (5)
 * and Finished (6).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as werift from 'werift';
import { seededRandom } from '../helpers/random.ts';

type Direction = 'toServer' | 'toClient';
/** What happens to datagram number `index` (from 0) going `direction`: dropped, altered, or kept. */
type LinkPolicy = (direction: Direction, index: number, datagram: Buffer) => Buffer | undefined;

interface EventLike<T extends unknown[]> { once(cb: (...a: T) => void): void }
interface DtlsEndpoint {
  onConnect: EventLike<[]>;
  onError: EventLike<[unknown]>;
  connect?(): Promise<void>;
}
interface MemoryTransport { type: string; address: object; onData: (b: Buffer) => void; send(b: Buffer): Promise<void>; close(): void }
type DtlsCtor = new (options: Record<string, unknown>) => DtlsEndpoint;
interface CertificateLike { certPem: string; privateKey: string; signatureHash: unknown }

const { DtlsClient, DtlsServer, RTCDtlsTransport } = werift as unknown as { DtlsClient: DtlsCtor; DtlsServer: DtlsCtor; RTCDtlsTransport: { SetupCertificate(): Promise<CertificateLike> } };

interface Outcome { client: 'connected' | 'failed' | 'pending'; server: 'connected' | 'failed' | 'pending'; sent: Record<Direction, number> }

/** One handshake over the link; settles when both ends connected, one failed, or `timeoutMs`. */
async function handshake(policy: LinkPolicy, timeoutMs: number): Promise<Outcome> {
  const cert = await RTCDtlsTransport.SetupCertificate();
  const sent: Record<Direction, number> = { toServer: 0, toClient: 0 };
  const timers = new Set<NodeJS.Timeout>();
  const ends: { client?: MemoryTransport; server?: MemoryTransport } = {};
  const transport = (direction: Direction): MemoryTransport => ({
    type: 'memory',
    address: {},
    onData: () => undefined,
    send(datagram: Buffer) {
      const out = policy(direction, sent[direction]++, Buffer.from(datagram));
      if (out) {
        // Delivered on a later turn, in order, as a socket would.
        const timer = setTimeout(() => { timers.delete(timer); (direction === 'toServer' ? ends.server : ends.client)?.onData(out); }, 1);
        timers.add(timer);
      }
      return Promise.resolve();
    },
    close: () => undefined,
  });
  ends.client = transport('toServer');
  ends.server = transport('toClient');
  const options = { cert: cert.certPem, key: cert.privateKey, signatureHash: cert.signatureHash, srtpProfiles: [1], extendedMasterSecret: true };
  const server = new DtlsServer({ ...options, transport: ends.server, certificateRequest: true, skipHelloVerify: true });
  const client = new DtlsClient({ ...options, transport: ends.client });
  const outcome: Outcome = { client: 'pending', server: 'pending', sent };
  await new Promise<void>((resolve) => {
    const deadline = setTimeout(resolve, timeoutMs);
    const settle = () => {
      if (outcome.client === 'failed' || outcome.server === 'failed' || (outcome.client === 'connected' && outcome.server === 'connected')) {
        clearTimeout(deadline);
        resolve();
      }
    };
    client.onConnect.once(() => { outcome.client = 'connected'; settle(); });
    server.onConnect.once(() => { outcome.server = 'connected'; settle(); });
    client.onError.once(() => { outcome.client = 'failed'; settle(); });
    server.onError.once(() => { outcome.server = 'failed'; settle(); });
    client.connect?.().catch(() => undefined);
  });
  for (const t of timers) clearTimeout(t);
  return outcome;
}

// Retransmissions come 0.5 s, then 1 s, 1.5 s … apart (werift's Flight): one lost datagram costs
// about 0.5 s, so 8 s is far beyond any single loss and short of werift's 27 s give-up.
const LOSS_BOUND_MS = 8_000;

test('DTLS handshake survives the loss of any one datagram of either side\'s flights', async () => {
  const cases: { direction: Direction; index: number }[] = [];
  for (let index = 0; index <= 5; index++) cases.push({ direction: 'toServer', index });
  for (let index = 0; index <= 6; index++) cases.push({ direction: 'toClient', index });
  const outcomes = await Promise.all(cases.map(async (c) => ({ ...c, ...(await handshake((d, i, b) => (d === c.direction && i === c.index ? undefined : b), LOSS_BOUND_MS)) })));
  const broken = outcomes.filter((o) => o.client !== 'connected' || o.server !== 'connected');
  assert.deepEqual(broken.map((o) => `${o.direction} #${o.index}: client ${o.client}, server ${o.server}`), []);
});

test('DTLS handshake completes under a seeded 15 % loss both ways', async () => {
  const seeds = Array.from({ length: 24 }, (_, i) => 1000 + i);
  const outcomes = await Promise.all(seeds.map(async (seed) => {
    const random = seededRandom(seed);
    return { seed, ...(await handshake((_d, _i, b) => (random() < 0.15 ? undefined : b), 20_000)) };
  }));
  const broken = outcomes.filter((o) => o.client !== 'connected' || o.server !== 'connected');
  assert.deepEqual(broken.map((o) => `seed ${o.seed}: client ${o.client}, server ${o.server}, sent ${JSON.stringify(o.sent)}`), []);
});

/** The datagram with its last byte changed: inside a signature, the last byte of its DER. */
const alterLastByte = (b: Buffer): Buffer => { const c = Buffer.from(b); c[c.length - 1] = (c.at(-1) ?? 0) ^ 0x01; return c; };

test('a ServerKeyExchange whose signature does not verify fails the client', async () => {
  const o = await handshake((d, i, b) => (d === 'toClient' && i === 2 ? alterLastByte(b) : b), LOSS_BOUND_MS);
  assert.equal(o.client, 'failed', `the client ${o.client} with a forged ServerKeyExchange signature`);
});

test('a CertificateVerify whose signature does not verify fails the server', async () => {
  const o = await handshake((d, i, b) => (d === 'toServer' && i === 3 ? alterLastByte(b) : b), LOSS_BOUND_MS);
  assert.equal(o.server, 'failed', `the server ${o.server} with a forged CertificateVerify signature`);
  assert.notEqual(o.client, 'connected', 'the client must not be told the handshake is done');
});
