/**
 * The STUN Binding method (RFC 8489 §10.1 server side; RFC 5780 §6 behaviour discovery).
 * Pure: takes a decoded request and where it came from, writes the answer and says which local
 * endpoint sends it to which port. No sockets, so every rule is testable without I/O.
 */
import {
  Attr, HEADER_LENGTH, MAGIC_COOKIE, MessageClass, Method, messageType, findAttr, attrValue, MessageWriter,
  checkFingerprint, fingerprintValue, readChangeRequest, readResponsePort, unknownAttributes, writeXorAddressBytes,
  RFC5780_REQUEST_ATTRIBUTES, type StunMessage, type TransportAddress,
} from '../stun/index.ts';
import type { EndpointIndex } from '../transport/ingress.ts';

const NONE: ReadonlySet<number> = new Set();

export interface BindingEndpoints {
  readonly addresses: readonly TransportAddress[];
  /** True when --alt-ip is set and all four endpoints are bound. */
  readonly rfc5780: boolean;
}

export interface BindingAnswer {
  /** Encoded response; a view into the writer's buffer, valid until its next use. */
  response: Buffer;
  /** Which local endpoint sends the answer. */
  from: EndpointIndex;
  /** Destination port (RESPONSE-PORT may change it); the address is always the source's. */
  port: number;
}

const BINDING_REQUEST = messageType(Method.Binding, MessageClass.Request);
const BINDING_SUCCESS = messageType(Method.Binding, MessageClass.SuccessResponse);
const BINDING_ERROR = messageType(Method.Binding, MessageClass.ErrorResponse);
/** A FINGERPRINT attribute: its 4-byte header and value. */
const FINGERPRINT_BYTES = 8;
/** Two 16-bit fields (a type and a length) as the 32-bit word they make. */
const wordOf = (high: number, low: number): number => ((high << 16) | low) >>> 0;
const FINGERPRINT_HEADER = wordOf(Attr.Fingerprint, 4);
/** The longest request `answerPlain` answers: a header and FINGERPRINT. */
export const PLAIN_REQUEST_MAX_BYTES = HEADER_LENGTH + FINGERPRINT_BYTES;
/** The longest answer `answerPlain` writes: an IPv6 XOR-MAPPED-ADDRESS and FINGERPRINT. */
export const PLAIN_ANSWER_MAX_BYTES = HEADER_LENGTH + 24 + FINGERPRINT_BYTES;

/** Why a request got no answer; the caller counts these as dropped. */
export type BindingDrop = 'not_request' | 'bad_fingerprint';

export class BindingHandler {
  private readonly endpoints: BindingEndpoints;
  private readonly writer = new MessageWriter();
  private readonly answer: BindingAnswer = { response: Buffer.alloc(0), from: 0, port: 0 };
  private readonly unknown: number[] = [];
  private readonly rxView = new ViewCache();
  private readonly txView = new ViewCache();

  constructor(endpoints: BindingEndpoints) {
    this.endpoints = endpoints;
  }

  /**
   * Answers one Binding request received on endpoint `at` from `source` over UDP (`stream` false)
   * or TCP/TLS. Returns the answer (the object is reused), or the reason it is dropped.
   */
  handle(req: StunMessage, source: TransportAddress, at: EndpointIndex, stream: boolean, integrity?: { key: Buffer; sha256: boolean }): BindingAnswer | BindingDrop {
    if (req.cls !== MessageClass.Request) return 'not_request'; // indications are keepalives
    const fingerprinted = findAttr(req, Attr.Fingerprint) >= 0;
    if (fingerprinted && !checkFingerprint(req)) return 'bad_fingerprint';

    const w = this.writer;
    const ans = this.answer;
    ans.from = at;
    ans.port = source.port;

    // RFC 8489 §6.3.1.1: unknown comprehension-required attributes → 420. Without a second
    // address we do not implement RFC 5780, so its request attributes are unknown too.
    const unknown = unknownAttributes(req, this.endpoints.rfc5780 ? NONE : RFC5780_REQUEST_ATTRIBUTES, this.unknown);
    if (unknown.length > 0) {
      w.reset(BINDING_ERROR, req.transactionId);
      w.addErrorCode(420, 'Unknown Attribute');
      w.addUnknownAttributes(unknown);
      if (fingerprinted) w.addFingerprint();
      ans.response = w.finish();
      return ans;
    }

    let from: EndpointIndex = at;
    if (this.endpoints.rfc5780) {
      const ci = findAttr(req, Attr.ChangeRequest);
      if (ci >= 0) {
        const change = readChangeRequest(attrValue(req, ci));
        if (stream && (change.changeIp || change.changePort)) {
          // RFC 5780 §6.1: CHANGE-REQUEST only makes sense over UDP.
          return this.error(req, 400, 'CHANGE-REQUEST over a stream transport', fingerprinted);
        }
        from = (at ^ (change.changeIp ? 2 : 0) ^ (change.changePort ? 1 : 0)) as EndpointIndex;
      }
      const pi = findAttr(req, Attr.ResponsePort);
      if (pi >= 0) {
        if (stream) return this.error(req, 400, 'RESPONSE-PORT over a stream transport', fingerprinted);
        ans.port = readResponsePort(attrValue(req, pi));
      }
    }

    w.reset(BINDING_SUCCESS, req.transactionId);
    w.addXorAddress(Attr.XorMappedAddress, source);
    if (this.endpoints.rfc5780) {
      const addrs = this.endpoints.addresses;
      // RFC 5780 clients (coturn's natdiscovery among them) also read the plain MAPPED-ADDRESS.
      w.addAddress(Attr.MappedAddress, source);
      w.addAddress(Attr.ResponseOrigin, addrs[from] as TransportAddress);
      // RFC 5780 §6.1: OTHER-ADDRESS differs in both IP and port from where the request arrived.
      w.addAddress(Attr.OtherAddress, addrs[at ^ 3] as TransportAddress);
    }
    if (integrity) {
      if (integrity.sha256) w.addMessageIntegritySha256(integrity.key);
      else w.addMessageIntegrity(integrity.key);
    }
    if (fingerprinted) w.addFingerprint();
    ans.from = from;
    ans.response = w.finish();
    return ans;
  }

  /**
   * The fast form of `handle` for the Binding request nearly every client sends over UDP: a
   * request with no attribute but perhaps FINGERPRINT, answered from the received bytes without
   * decoding them or building an object. `req[off, off + len)` came from `family`, the address
   * bytes at `addr[addrOff]` (network order) and `port`; the answer — the same bytes `handle`
   * writes for it, at most PLAIN_ANSWER_MAX_BYTES — goes to `out[outOff]`, from the endpoint the
   * request reached, to the source. Returns its length, or 0 for any other datagram (a bad
   * FINGERPRINT, any other attribute, another method or class, RFC 5780 on, an IPv4-mapped
   * source): those take the full path, `decodeMessage` and `handle`, with its errors and counts.
   */
  answerPlain(req: Buffer, off: number, len: number, family: 4 | 6, addr: Uint8Array, addrOff: number, port: number, out: Buffer, outOff: number): number {
    // RFC 5780 answers carry MAPPED-ADDRESS, RESPONSE-ORIGIN and OTHER-ADDRESS: `handle` writes them.
    if (this.endpoints.rfc5780) return 0;
    const fingerprinted = len === PLAIN_REQUEST_MAX_BYTES;
    if (!fingerprinted && len !== HEADER_LENGTH) return 0;
    // 32-bit reads and writes: this runs per datagram, and a batch's buffers stay the same.
    const r = this.rxView.of(req);
    // The header (RFC 8489 §5): type, length, magic cookie.
    if (r.getUint32(off) !== wordOf(BINDING_REQUEST, len - HEADER_LENGTH) || r.getUint32(off + 4) !== MAGIC_COOKIE) return 0;
    if (fingerprinted) {
      // RFC 8489 §14.7: the only attribute is a FINGERPRINT of 4 bytes that matches.
      const at = off + HEADER_LENGTH;
      if (r.getUint32(at) !== FINGERPRINT_HEADER || fingerprintValue(req, at, off) !== r.getUint32(at + 4)) return 0;
    }
    // The front door answers an IPv4-mapped source (a dual-stack socket's IPv4 client) as IPv4.
    if (family === 6 && isIPv4Mapped(addr, addrOff)) return 0;

    const o = this.txView.of(out);
    const valueLength = family === 4 ? 8 : 20;
    const end = outOff + HEADER_LENGTH + 4 + valueLength;
    o.setUint32(outOff, wordOf(BINDING_SUCCESS, 4 + valueLength + (fingerprinted ? FINGERPRINT_BYTES : 0)));
    // Magic cookie and transaction id, as the request has them.
    for (let k = 4; k < HEADER_LENGTH; k += 4) o.setUint32(outOff + k, r.getUint32(off + k));
    o.setUint32(outOff + HEADER_LENGTH, wordOf(Attr.XorMappedAddress, valueLength));
    writeXorAddressBytes(out, outOff, outOff + HEADER_LENGTH + 4, family, addr, addrOff, port);
    if (!fingerprinted) return end - outOff;
    o.setUint32(end, FINGERPRINT_HEADER);
    o.setUint32(end + 4, fingerprintValue(out, end, outOff));
    return end + FINGERPRINT_BYTES - outOff;
  }

  private error(req: StunMessage, code: number, reason: string, fingerprinted: boolean): BindingAnswer {
    const w = this.writer;
    w.reset(BINDING_ERROR, req.transactionId);
    w.addErrorCode(code, reason);
    if (fingerprinted) w.addFingerprint();
    this.answer.response = w.finish();
    return this.answer;
  }
}

/** ::ffff:a.b.c.d (RFC 4291 §2.5.5.2): ten zero bytes, then 0xffff. */
function isIPv4Mapped(addr: Uint8Array, at: number): boolean {
  for (let k = 0; k < 10; k++) if (addr[at + k] !== 0) return false;
  return addr[at + 10] === 0xff && addr[at + 11] === 0xff;
}

/** A DataView of the last buffer asked for: made again only when the buffer changes. */
class ViewCache {
  private buf: Buffer | undefined;
  private view: DataView = new DataView(new ArrayBuffer(0));

  of(buf: Buffer): DataView {
    if (buf !== this.buf) {
      this.buf = buf;
      this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    }
    return this.view;
  }
}
