/* bp_crc32.h - CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), the
 * checksum of zlib's crc32() and erlang:crc32/1, used by the recording's
 * header and frames (doc/recording-format.md).
 *
 * Pure, no locks, no allocation: safe from any thread.
 */
#ifndef BP_CRC32_H
#define BP_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* Continues a CRC over len bytes: start with crc 0, feed pieces in order;
 * the result of each call is the CRC of everything fed so far.
 * bp_crc32_update(0, "123456789", 9) == 0xCBF43926. */
uint32_t bp_crc32_update(uint32_t crc, const void *data, size_t len);

#endif
