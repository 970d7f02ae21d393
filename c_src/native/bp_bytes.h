/* bp_bytes.h - unaligned little-endian-host reads from byte buffers
 * (memcpy into a local: no alignment or aliasing assumptions). The caller
 * checks the bounds. Shared by the symfile parser (bp_symbols.c) and the
 * ELF reader (bp_elf.c). */
#ifndef BP_BYTES_H
#define BP_BYTES_H

#include <stdint.h>
#include <string.h>

static inline uint16_t bp_rd16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline uint32_t bp_rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline uint64_t bp_rd64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

#endif
