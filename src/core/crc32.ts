// CRC-32 as zip records carry it (ISO-HDLC: reflected polynomial 0xedb88320, zlib's crc32),
// eight bytes a step from eight tables ("slicing by 8"). Plain TypeScript for every platform;
// Node's zlib computes the same sum faster where it has zlib.crc32 (platform.crc32).

const TABLES = (() => {
  const t = new Uint32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    for (let k = 1; k < 8; k++) {
      const previous = t[(k - 1) * 256 + n];
      t[k * 256 + n] = (previous >>> 8) ^ t[previous & 0xff];
    }
  }
  return t;
})();

/** The CRC-32 of `data`, continuing from `crc` (the sum of the bytes before it; 0 to start). */
export function crc32(data: Uint8Array, crc = 0): number {
  const t = TABLES;
  let c = ~crc >>> 0;
  let i = 0;
  const end8 = data.length - (data.length % 8);
  for (; i < end8; i += 8) {
    const lo = (c ^ (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24))) >>> 0;
    c = t[1792 + (lo & 0xff)] ^ t[1536 + ((lo >>> 8) & 0xff)] ^ t[1280 + ((lo >>> 16) & 0xff)] ^ t[1024 + (lo >>> 24)] ^
      t[768 + data[i + 4]] ^ t[512 + data[i + 5]] ^ t[256 + data[i + 6]] ^ t[data[i + 7]];
  }
  for (; i < data.length; i++) c = t[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}
