/**
 * RFC 5769 "Test Vectors for STUN" §2.1-§2.4, byte for byte. Padding bytes of §2.1-§2.3 are
 * 0x20 (RFC 5389 let senders pad with anything), those of §2.4 are 0x00.
 * Plus RFC 8489 Appendix B.1: a request with USERHASH, PASSWORD-ALGORITHM and
 * MESSAGE-INTEGRITY-SHA256.
 */

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** Transaction id of §2.1-§2.3. */
export const TRANSACTION_ID = hex('b7e7a701 bc34d686 fa87dfae');

/** §2.1 Sample Request: short-term credentials, SOFTWARE, PRIORITY, ICE-CONTROLLED, USERNAME. */
export const sampleRequest = {
  bytes: hex(`
    00010058 2112a442 b7e7a701 bc34d686 fa87dfae
    80220010 5354554e 20746573 7420636c 69656e74
    00240004 6e0001ff
    80290008 932ff9b1 51263b36
    00060009 6576746a 3a683676 59202020
    00080014 9aeaa70c bfd8cb56 781ef2b5 b2d3f249 c1b571a2
    80280004 e57a3bcf`),
  software: 'STUN test client',
  priority: 0x6e0001ff,
  tieBreaker: 0x932ff9b151263b36n,
  username: 'evtj:h6vY',
  password: 'VOkJxbRl1RmTxUk/WvJxBt',
};

/** §2.2 Sample IPv4 Response: XOR-MAPPED-ADDRESS 192.0.2.1:32853. */
export const sampleIPv4Response = {
  bytes: hex(`
    0101003c 2112a442 b7e7a701 bc34d686 fa87dfae
    8022000b 74657374 20766563 746f7220
    00200008 0001a147 e112a643
    00080014 2b91f599 fd9e90c3 8c7489f9 2af9ba53 f06be7d7
    80280004 c07d4c96`),
  software: 'test vector',
  mapped: { family: 4, address: '192.0.2.1', port: 32853 } as const,
  password: 'VOkJxbRl1RmTxUk/WvJxBt',
};

/** §2.3 Sample IPv6 Response: XOR-MAPPED-ADDRESS [2001:db8:1234:5678:11:2233:4455:6677]:32853. */
export const sampleIPv6Response = {
  bytes: hex(`
    01010048 2112a442 b7e7a701 bc34d686 fa87dfae
    8022000b 74657374 20766563 746f7220
    00200014 0002a147 0113a9fa a5d3f179 bc25f4b5 bed2b9d9
    00080014 a382954e 4be67bf1 1784c97c 8292c275 bfe3ed41
    80280004 c8fb0b4c`),
  software: 'test vector',
  mapped: { family: 6, address: '2001:db8:1234:5678:11:2233:4455:6677', port: 32853 } as const,
  password: 'VOkJxbRl1RmTxUk/WvJxBt',
};

/**
 * §2.4 Sample Request with Long-Term Authentication. The password is "The\u00ADM\u00AAtr\u2168"
 * before SASLprep, "TheMatrIX" after.
 */
export const sampleLongTermRequest = {
  bytes: hex(`
    00010060 2112a442 78ad3433 c6ad72c0 29da412e
    00060012 e3839ee3 8388e383 aae38383 e382afe3 82b90000
    0015001c 662f2f34 39396b39 35346436 4f4c3334 6f4c3946 53547679 36347341
    0014000b 6578616d 706c652e 6f726700
    00080014 f6702465 6dd64a3e 02b8e071 2e85c9a2 8ca89666`),
  transactionId: hex('78ad3433 c6ad72c0 29da412e'),
  username: '\u30DE\u30C8\u30EA\u30C3\u30AF\u30B9',
  password: 'TheMatrIX',
  realm: 'example.org',
  nonce: 'f//499k954d6OL34oL9FSTvy64sA',
};

/**
 * RFC 8489 Appendix B.1: long-term authentication with USERHASH, a NONCE carrying the
 * "obMatJos2" security-feature cookie, PASSWORD-ALGORITHM SHA-256 and
 * MESSAGE-INTEGRITY-SHA256. Same user, password and realm as §2.4.
 */
export const rfc8489Sha256Request = {
  bytes: hex(`
    00010090 2112a442 78ad3433 c6ad72c0 29da412e
    001e0020 4a3cf38f ef6992bd a952c678 0417da0f 24819415 569e60b2 05c46e41 407f1704
    00150029 6f624d61 744a6f73 32414141 43662f2f 3439396b 39353464 364f4c33 346f4c39
             46535476 79363473 41000000
    0014000b 6578616d 706c652e 6f726700
    001d0004 00020000
    001c0020 b5c7bf00 5b6c52a2 1c51c5e8 92f81924 136296cb 927c4314 9309278c c6518e65`),
  transactionId: hex('78ad3433 c6ad72c0 29da412e'),
  username: '\u30DE\u30C8\u30EA\u30C3\u30AF\u30B9',
  password: 'TheMatrIX',
  realm: 'example.org',
  nonce: 'obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA',
};
