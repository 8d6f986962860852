import { Attr } from '../constants.ts';
import { StunDecodeError, StunEncodeError } from '../errors.ts';

/**
 * PASSWORD-ALGORITHM (RFC 8489 §14.12) and PASSWORD-ALGORITHMS (§14.11): algorithm number,
 * parameters length, parameters padded to 4 bytes. A list repeats that layout.
 */
export const PasswordAlgorithm = {
  MD5: 0x0001,
  SHA256: 0x0002,
} as const;
export type PasswordAlgorithm = (typeof PasswordAlgorithm)[keyof typeof PasswordAlgorithm];

export interface PasswordAlgorithmEntry {
  algorithm: number;
  /** Parameters (none for MD5 and SHA-256); a view of the attribute value when read. */
  params: Buffer;
}

const NO_PARAMS = Buffer.alloc(0);

function readEntry(value: Buffer, offset: number, attrType: number): PasswordAlgorithmEntry {
  if (value.length - offset < 4) {
    throw new StunDecodeError('STUN_BAD_ATTRIBUTE', 'truncated password algorithm', attrType);
  }
  const algorithm = value.readUInt16BE(offset);
  const paramsLength = value.readUInt16BE(offset + 2);
  const start = offset + 4;
  if (start + paramsLength > value.length) {
    throw new StunDecodeError('STUN_BAD_ATTRIBUTE', 'password algorithm parameters overrun the attribute', attrType);
  }
  const params = paramsLength === 0 ? NO_PARAMS : value.subarray(start, start + paramsLength);
  return { algorithm, params };
}

function entryEnd(entry: PasswordAlgorithmEntry, offset: number): number {
  return offset + 4 + ((entry.params.length + 3) & ~3);
}

export function readPasswordAlgorithm(value: Buffer): PasswordAlgorithmEntry {
  const entry = readEntry(value, 0, Attr.PasswordAlgorithm);
  // The parameters' padding is the attribute's own padding, outside the value.
  if (4 + entry.params.length !== value.length) {
    throw new StunDecodeError('STUN_BAD_ATTRIBUTE', 'bytes after the password algorithm', Attr.PasswordAlgorithm);
  }
  return entry;
}

export function readPasswordAlgorithms(value: Buffer): PasswordAlgorithmEntry[] {
  const list: PasswordAlgorithmEntry[] = [];
  let off = 0;
  while (off < value.length) {
    const entry = readEntry(value, off, Attr.PasswordAlgorithms);
    list.push(entry);
    // Within the list each entry's parameters are padded; the last one's may end the value.
    off = Math.min(entryEnd(entry, off), value.length);
  }
  return list;
}

function checkEntry(entry: PasswordAlgorithmEntry): void {
  if (!Number.isInteger(entry.algorithm) || entry.algorithm < 0 || entry.algorithm > 0xffff) {
    throw new StunEncodeError('STUN_BAD_VALUE', `password algorithm ${entry.algorithm}`);
  }
  if (entry.params.length > 0xffff) throw new StunEncodeError('STUN_VALUE_TOO_LONG', 'password algorithm parameters');
}

/** The value of PASSWORD-ALGORITHM, for `MessageWriter.addAttr`. */
export function encodePasswordAlgorithm(entry: PasswordAlgorithmEntry): Buffer {
  checkEntry(entry);
  const out = Buffer.alloc(4 + entry.params.length);
  out.writeUInt16BE(entry.algorithm, 0);
  out.writeUInt16BE(entry.params.length, 2);
  entry.params.copy(out, 4);
  return out;
}

/** The value of PASSWORD-ALGORITHMS, for `MessageWriter.addAttr` (worth computing once). */
export function encodePasswordAlgorithms(list: readonly PasswordAlgorithmEntry[]): Buffer {
  let size = 0;
  for (const entry of list) {
    checkEntry(entry);
    size = entryEnd(entry, size);
  }
  const out = Buffer.alloc(size);
  let off = 0;
  for (const entry of list) {
    out.writeUInt16BE(entry.algorithm, off);
    out.writeUInt16BE(entry.params.length, off + 2);
    entry.params.copy(out, off + 4);
    off = entryEnd(entry, off);
  }
  return out;
}
