/* CRC-32 of zip records (zlib's crc32: reflected polynomial 0xedb88320, pre- and post-inverted)
   for the native addon, by carry-less multiplication where the CPU has PCLMULQDQ. */
#ifndef RESNET_CRC32_H
#define RESNET_CRC32_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Whether crc32_update runs the carry-less folding (x86-64 with PCLMULQDQ and SSE4.1). */
bool crc32_fast(void);
/* zlib's crc32(crc, p, n): the CRC-32 of the n bytes after a previous sum crc (0 to start). */
uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n);

#endif /* RESNET_CRC32_H */
