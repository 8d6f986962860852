/**
 * IP address text <-> bytes, without `node:net`. Formatting follows what dgram reports as a
 * peer's address (libuv's inet_ntop): IPv6 in lower-case hex with the longest run of two or more
 * zero groups as "::" (the first when tied), and IPv4-mapped (::ffff:a.b.c.d) and
 * IPv4-compatible (::a.b.c.d) addresses with a dotted tail.
 */

export function formatIPv4(buf: Buffer, offset: number): string {
  return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`;
}

export function formatIPv6(buf: Buffer, offset: number): string {
  // Longest run of zero groups (libuv/BSD inet_ntop6).
  let bestBase = -1;
  let bestLen = 0;
  let curBase = -1;
  let curLen = 0;
  for (let i = 0; i < 8; i++) {
    if (buf.readUInt16BE(offset + 2 * i) === 0) {
      if (curBase === -1) {
        curBase = i;
        curLen = 1;
      } else {
        curLen++;
      }
    } else if (curBase !== -1) {
      if (curLen > bestLen) {
        bestBase = curBase;
        bestLen = curLen;
      }
      curBase = -1;
    }
  }
  if (curBase !== -1 && curLen > bestLen) {
    bestBase = curBase;
    bestLen = curLen;
  }
  if (bestLen < 2) bestBase = -1;

  let out = '';
  for (let i = 0; i < 8; i++) {
    if (bestBase !== -1 && i >= bestBase && i < bestBase + bestLen) {
      if (i === bestBase) out += ':';
      continue;
    }
    if (i !== 0) out += ':';
    if (
      i === 6 &&
      bestBase === 0 &&
      (bestLen === 6 || (bestLen === 5 && buf.readUInt16BE(offset + 10) === 0xffff))
    ) {
      return out + formatIPv4(buf, offset + 12);
    }
    out += buf.readUInt16BE(offset + 2 * i).toString(16);
  }
  if (bestBase !== -1 && bestBase + bestLen === 8) out += ':';
  return out;
}

/**
 * Writes the 4 bytes of a dotted-quad IPv4 address at `offset`. Returns false (having written
 * garbage) unless `s` is exactly four decimal numbers 0-255 without leading zeros.
 */
export function parseIPv4(s: string, target: Buffer, offset: number): boolean {
  return parseIPv4Range(s, 0, s.length, target, offset);
}

function parseIPv4Range(s: string, start: number, end: number, target: Buffer, offset: number): boolean {
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = start; i <= end; i++) {
    const c = i < end ? s.charCodeAt(i) : 0x2e; // a virtual '.' closes the last part
    if (c >= 0x30 && c <= 0x39) {
      if (digits > 0 && value === 0) return false; // leading zero
      value = value * 10 + (c - 0x30);
      if (value > 255) return false;
      digits++;
    } else if (c === 0x2e) {
      if (digits === 0 || part === 4) return false;
      target[offset + part] = value;
      part++;
      value = 0;
      digits = 0;
    } else {
      return false;
    }
  }
  return part === 4;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

/**
 * Writes the 16 bytes of an IPv6 address at `offset`. Accepts "::" compression, a dotted IPv4
 * tail and a zone ("%eth0", dropped: STUN addresses carry none). Returns false (having written
 * garbage) for anything else.
 */
export function parseIPv6(s: string, target: Buffer, offset: number): boolean {
  let end = s.indexOf('%');
  if (end === -1) end = s.length;
  else if (end === s.length - 1) return false;
  if (end < 2) return false;

  let group = 0; // groups written so far
  let gap = -1; // group index where "::" stands
  let i = 0;
  if (s.charCodeAt(0) === 0x3a) {
    if (s.charCodeAt(1) !== 0x3a) return false;
    gap = 0;
    i = 2;
    if (i === end) {
      target.fill(0, offset, offset + 16);
      return true;
    }
  }
  for (;;) {
    if (group === 8) return false;
    const partStart = i;
    let value = 0;
    let digits = 0;
    while (i < end) {
      const h = hexValue(s.charCodeAt(i));
      if (h < 0) break;
      value = (value << 4) | h;
      digits++;
      i++;
    }
    if (i < end && s.charCodeAt(i) === 0x2e) {
      // Dotted IPv4 tail: the last 32 bits.
      if (group > 6 || !parseIPv4Range(s, partStart, end, target, offset + 2 * group)) return false;
      group += 2;
      break;
    }
    if (digits === 0 || digits > 4) return false;
    target.writeUInt16BE(value, offset + 2 * group);
    group++;
    if (i === end) break;
    if (s.charCodeAt(i) !== 0x3a) return false;
    i++;
    if (i < end && s.charCodeAt(i) === 0x3a) {
      if (gap !== -1) return false;
      gap = group;
      i++;
      if (i === end) break;
    } else if (i === end) {
      return false; // trailing single ':'
    }
  }

  if (gap === -1) return group === 8;
  if (group > 7) return false;
  // Move the groups after "::" to the end and zero the gap.
  const tail = group - gap;
  const from = offset + 2 * gap;
  target.copyWithin(offset + 16 - 2 * tail, from, from + 2 * tail);
  target.fill(0, from, offset + 16 - 2 * tail);
  return true;
}
