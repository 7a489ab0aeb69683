// float16 and bfloat16 → float32, the only place resnet-ts widens half-precision bits
// (torch HalfStorage/BFloat16Storage, safetensors F16/BF16, numpy '<f2').

/** IEEE 754 binary16 (1 sign, 5 exponent, 10 mantissa bits) → float32 bits. */
function float16BitsToFloat32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exponent = (h >> 10) & 0x1f;
  let mantissa = h & 0x3ff;
  if (exponent === 0x1f) return sign | 0x7f800000 | (mantissa << 13); // inf / nan, payload kept
  if (exponent !== 0) return sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
  if (mantissa === 0) return sign; // ±0
  // Subnormal: mantissa · 2^-24. Shift until the implicit bit (0x400) appears; every
  // shift lowers the float32 exponent by one below float16's smallest normal 2^-14.
  let shifts = 0;
  while ((mantissa & 0x400) === 0) {
    mantissa <<= 1;
    shifts++;
  }
  return sign | ((127 - 15 + 1 - shifts) << 23) | ((mantissa & 0x3ff) << 13);
}

/** float16 values (as raw uint16 bits) → float32, exactly (every half is a float). */
export function float16ToFloat32(bits: Uint16Array): Float32Array {
  const out = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = float16BitsToFloat32Bits(bits[i]);
  return new Float32Array(out.buffer);
}

/** bfloat16 values (raw uint16 bits) → float32: bfloat16 is the top half of a float32. */
export function bfloat16ToFloat32(bits: Uint16Array): Float32Array {
  const out = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = bits[i] << 16;
  return new Float32Array(out.buffer);
}
