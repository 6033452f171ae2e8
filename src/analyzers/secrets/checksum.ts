const CRC_TABLE = (() => {
  const table = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c;
  }
  return table;
})();

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** CRC-32 (IEEE) of the ASCII characters text[start, end). */
export function crc32(text: string, start: number, end: number): number {
  let crc = -1;
  for (let i = start; i < end; i++) crc = CRC_TABLE[(crc ^ text.charCodeAt(i)) & 0xff]! ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}

/**
 * GitHub's (and npm's) token checksum: the last 6 characters are the CRC-32 of the 30 random
 * characters after the prefix, in base62, zero-padded. Compared without building strings.
 */
export function base62ChecksumValid(
  text: string,
  start: number,
  prefixLength: number,
  length: number,
): boolean {
  const end = start + length;
  let n = crc32(text, start + prefixLength, end - 6);
  for (let i = end - 1; i >= end - 6; i--) {
    if (text.charCodeAt(i) !== BASE62.charCodeAt(n % 62)) return false;
    n = Math.floor(n / 62);
  }
  return n === 0;
}

/** Encodes a checksum the same way; used to build valid-looking test tokens. */
export function base62Checksum(random: string): string {
  let n = crc32(random, 0, random.length);
  let out = "";
  for (let i = 0; i < 6; i++) {
    out = BASE62[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out;
}
