/**
 * The STUN Binding method (RFC 8489 §10.1 server side; RFC 5780 §6 behaviour discovery).
 * Pure: takes a decoded request and where it came from, writes the answer and says which local
 * endpoint sends it to which port. No sockets, so every rule is testable without I/O.
 */
import {
  Attr, MessageClass, Method, messageType, findAttr, attrValue, MessageWriter,
  checkFingerprint, readChangeRequest, readResponsePort, unknownAttributes, RFC5780_REQUEST_ATTRIBUTES,
  type StunMessage, type TransportAddress,
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

const BINDING_SUCCESS = messageType(Method.Binding, MessageClass.SuccessResponse);
const BINDING_ERROR = messageType(Method.Binding, MessageClass.ErrorResponse);

/** Why a request got no answer; the caller counts these as dropped. */
export type BindingDrop = 'not_request' | 'bad_fingerprint';

export class BindingHandler {
  private readonly endpoints: BindingEndpoints;
  private readonly writer = new MessageWriter();
  private readonly answer: BindingAnswer = { response: Buffer.alloc(0), from: 0, port: 0 };
  private readonly unknown: number[] = [];

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

  private error(req: StunMessage, code: number, reason: string, fingerprinted: boolean): BindingAnswer {
    const w = this.writer;
    w.reset(BINDING_ERROR, req.transactionId);
    w.addErrorCode(code, reason);
    if (fingerprinted) w.addFingerprint();
    this.answer.response = w.finish();
    return this.answer;
  }
}
