/**
 * PADDING (RFC 5780 §7.6): bytes whose content does not matter, only their number; a server
 * answering a request that carried it pads its response to the same size. Write it with
 * `MessageWriter.reserveAttr(Attr.Padding, length)`, which zero-fills.
 */
export function readPaddingLength(value: Buffer): number {
  return value.length;
}
