import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  Attr, MessageClass, Method, MessageWriter, StunDecodeError, checkFingerprint, decodeMessage, createStunMessage,
  formatIPv4, formatIPv6, messageType, type TransportAddress,
} from '../stun/index.ts';
import { BindingHandler, PLAIN_ANSWER_MAX_BYTES, type BindingAnswer, type BindingDrop } from './binding.ts';

const RUNS = { numRuns: 3000 };
const BINDING = messageType(Method.Binding, MessageClass.Request);
const ENDPOINTS: TransportAddress[] = [
  { family: 4, address: '192.0.2.1', port: 3478 }, { family: 4, address: '192.0.2.1', port: 3479 },
  { family: 4, address: '192.0.2.2', port: 3478 }, { family: 4, address: '192.0.2.2', port: 3479 },
];
const plainHandler = new BindingHandler({ addresses: ENDPOINTS.slice(0, 1), rfc5780: false });
const rfc5780Handler = new BindingHandler({ addresses: ENDPOINTS, rfc5780: true });

/** A datagram's source as the addon gives it: family, address bytes in network order, port. */
interface Source { family: 4 | 6; bytes: Uint8Array; port: number }

/**
 * The full path, as the front door (stunServer.ts onUdp, dispatch) takes a UDP datagram: decode,
 * the source as text (an IPv4-mapped IPv6 source answered as IPv4), then BindingHandler.handle.
 */
function fullPath(h: BindingHandler, datagram: Buffer, src: Source): BindingAnswer | BindingDrop | 'malformed' | 'not_binding' {
  let msg;
  try {
    msg = decodeMessage(datagram, createStunMessage());
  } catch (err) {
    if (err instanceof StunDecodeError) return 'malformed';
    throw err;
  }
  if (msg.method !== Method.Binding) return 'not_binding';
  const b = Buffer.from(src.bytes);
  let source: TransportAddress = { family: 4, address: formatIPv4(b, 0), port: src.port };
  if (src.family === 6) {
    const text = formatIPv6(b, 0);
    source = text.startsWith('::ffff:') && text.includes('.') ? { family: 4, address: text.slice(7), port: src.port } : { family: 6, address: text, port: src.port };
  }
  return h.handle(msg, source, 0, false);
}

/** The fast path on `datagram` placed at `rxOff` of a larger buffer, answered at `outOff`. */
function fastPath(h: BindingHandler, datagram: Buffer, src: Source, rxOff: number, outOff: number): Buffer | undefined {
  const rx = Buffer.alloc(rxOff + datagram.length + 16, 0xee);
  datagram.copy(rx, rxOff);
  const meta = Buffer.alloc(8 + 16, 0xdd);
  meta.set(src.bytes, 8);
  const out = Buffer.alloc(outOff + PLAIN_ANSWER_MAX_BYTES + 16, 0xcc);
  const n = h.answerPlain(rx, rxOff, datagram.length, src.family, meta, 8, src.port, out, outOff);
  if (n === 0) return undefined;
  assert.ok(n > 0 && n <= PLAIN_ANSWER_MAX_BYTES);
  assert.ok(out.subarray(outOff + n).every((x) => x === 0xcc), 'nothing written past the answer');
  assert.ok(out.subarray(0, outOff).every((x) => x === 0xcc), 'nothing written before the answer');
  return out.subarray(outOff, outOff + n);
}

/** What the fast path must take: a Binding request with no attribute or only a valid FINGERPRINT, RFC 5780 off, not IPv4-mapped. */
function eligible(h: BindingHandler, datagram: Buffer, src: Source): boolean {
  if (h === rfc5780Handler) return false;
  if (src.family === 6 && src.bytes.subarray(0, 10).every((x) => x === 0) && src.bytes[10] === 0xff && src.bytes[11] === 0xff) return false;
  try {
    const msg = decodeMessage(datagram);
    if (msg.type !== BINDING || msg.ignoredAttrCount !== 0) return false;
    return msg.attrCount === 0 || (msg.attrCount === 1 && msg.fingerprintIndex === 0 && checkFingerprint(msg));
  } catch {
    return false;
  }
}

function request(tid: Uint8Array, fingerprint: boolean, attrs: readonly (readonly [number, Uint8Array])[] = []): Buffer {
  const w = new MessageWriter().reset(BINDING, Buffer.from(tid));
  for (const [type, value] of attrs) w.addAttr(type, Buffer.from(value));
  if (fingerprint) w.addFingerprint();
  return w.toBuffer();
}

const tid = fc.uint8Array({ minLength: 12, maxLength: 12 });
const port = fc.integer({ min: 0, max: 0xffff });
const source: fc.Arbitrary<Source> = fc.oneof(
  fc.record({ family: fc.constant(4 as const), bytes: fc.uint8Array({ minLength: 4, maxLength: 4 }), port }),
  fc.record({ family: fc.constant(6 as const), bytes: fc.uint8Array({ minLength: 16, maxLength: 16 }), port }),
  // IPv4-mapped and IPv4-compatible IPv6 sources.
  fc.record({
    family: fc.constant(6 as const),
    bytes: fc.tuple(fc.constantFrom(0xffff, 0), fc.uint8Array({ minLength: 4, maxLength: 4 })).map(([mark, v4]) => {
      const b = new Uint8Array(16);
      b[10] = mark >>> 8; b[11] = mark & 0xff;
      b.set(v4, 12);
      return b;
    }),
    port,
  }),
);
const attr = fc.tuple(
  fc.oneof(fc.constantFrom(Attr.Software, Attr.ChangeRequest, Attr.ResponsePort, Attr.Padding, Attr.Fingerprint, Attr.MessageIntegrity), fc.integer({ min: 0, max: 0xffff })),
  fc.uint8Array({ maxLength: 24 }),
);
const mutation = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
);
/** Plain Binding requests, most of them valid, some with attributes, some mutated, some random bytes. */
const datagram: fc.Arbitrary<Buffer> = fc.oneof(
  { arbitrary: fc.tuple(tid, fc.boolean()).map(([t, fp]) => request(t, fp)), weight: 4 },
  { arbitrary: fc.tuple(tid, fc.boolean(), fc.array(attr, { minLength: 1, maxLength: 3 })).map(([t, fp, a]) => request(t, fp, a)), weight: 2 },
  {
    arbitrary: fc.tuple(tid, fc.boolean(), mutation).map(([t, fp, m]) => {
      const b = request(t, fp);
      if (m.kind === 'flip') b[m.at % b.length]! ^= 1 << m.bit;
      if (m.kind === 'cut') return b.subarray(0, m.at % b.length);
      if (m.kind === 'append') return Buffer.concat([b, m.bytes]);
      return b;
    }),
    weight: 3,
  },
  // Another class or method, with or without FINGERPRINT.
  { arbitrary: fc.tuple(tid, fc.boolean(), fc.integer({ min: 0, max: 0x3fff })).map(([t, fp, type]) => new MessageWriter().reset(type, Buffer.from(t)).addFingerprint().toBuffer().subarray(0, fp ? 28 : 20)), weight: 1 },
  { arbitrary: fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)), weight: 1 },
);

describe('BindingHandler.answerPlain (the in-batch fast path)', () => {
  it('answers exactly the Bindings it may, with the bytes of the full path; everything else falls through', () => {
    let answered = 0;
    let runs = 0;
    fc.assert(
      fc.property(datagram, source, fc.boolean(), fc.nat({ max: 64 }), fc.nat({ max: 64 }), (d, src, rfc5780, rxOff, outOff) => {
        runs++;
        const h = rfc5780 ? rfc5780Handler : plainHandler;
        const fast = fastPath(h, d, src, rxOff, outOff);
        assert.equal(fast !== undefined, eligible(h, d, src));
        if (fast === undefined) return;
        answered++;
        const full = fullPath(h, d, src);
        assert.ok(typeof full === 'object', `the full path answers it too (${String(full)})`);
        assert.equal(full.from, 0);
        assert.equal(full.port, src.port);
        assert.deepEqual(fast, full.response);
      }),
      RUNS,
    );
    assert.ok(answered > runs / 10, `the fast path answered ${answered} of ${runs}`);
  });

  it('answers an IPv4 and an IPv6 source with XOR-MAPPED-ADDRESS, and FINGERPRINT only when asked', () => {
    const t = Buffer.from('0123456789ab');
    for (const src of [{ family: 4 as const, bytes: Uint8Array.from([203, 0, 113, 7]), port: 50000 },
      { family: 6 as const, bytes: Uint8Array.from(Buffer.from('20010db8000000000000000000000001', 'hex')), port: 1 }]) {
      for (const fp of [false, true]) {
        const fast = fastPath(plainHandler, request(t, fp), src, 0, 0);
        assert.ok(fast);
        const msg = decodeMessage(fast);
        assert.equal(msg.type, messageType(Method.Binding, MessageClass.SuccessResponse));
        assert.equal(msg.attrCount, fp ? 2 : 1);
        assert.equal(msg.attrTypes[0], Attr.XorMappedAddress);
        assert.equal(checkFingerprint(msg), fp);
      }
    }
  });

  it('leaves a Binding with a wrong FINGERPRINT to the full path, which drops it', () => {
    const src: Source = { family: 4, bytes: Uint8Array.from([10, 0, 0, 1]), port: 4000 };
    const bad = request(Buffer.alloc(12, 7), true);
    bad[bad.length - 1]! ^= 1;
    assert.equal(fastPath(plainHandler, bad, src, 0, 0), undefined);
    assert.equal(fullPath(plainHandler, bad, src), 'bad_fingerprint');
  });

  it('leaves every Binding to the full path when RFC 5780 is on: its answers carry more', () => {
    const src: Source = { family: 4, bytes: Uint8Array.from([10, 0, 0, 1]), port: 4000 };
    assert.equal(fastPath(rfc5780Handler, request(Buffer.alloc(12), false), src, 0, 0), undefined);
  });
});
