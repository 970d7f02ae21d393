/* bp_crc32.c - table-driven CRC-32, slicing by 4 bytes. The tables are
 * filled once, on first use, under pthread_once. */
#include "bp_crc32.h"

#include <pthread.h>

static uint32_t bp_crc_t[4][256];
static pthread_once_t bp_crc_once = PTHREAD_ONCE_INIT;

static void bp_crc_fill(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = (c & 1u) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
        bp_crc_t[0][n] = c;
    }
    for (int n = 0; n < 256; n++)
        for (int k = 1; k < 4; k++)
            bp_crc_t[k][n] = (bp_crc_t[k - 1][n] >> 8) ^ bp_crc_t[0][bp_crc_t[k - 1][n] & 0xffu];
}

uint32_t bp_crc32_update(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;
    uint32_t c = ~crc;
    (void)pthread_once(&bp_crc_once, bp_crc_fill);
    while (len >= 4) {
        c ^= (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
             (uint32_t)p[3] << 24;
        c = bp_crc_t[3][c & 0xffu] ^ bp_crc_t[2][(c >> 8) & 0xffu] ^
            bp_crc_t[1][(c >> 16) & 0xffu] ^ bp_crc_t[0][c >> 24];
        p += 4;
        len -= 4;
    }
    while (len-- > 0)
        c = (c >> 8) ^ bp_crc_t[0][(c ^ *p++) & 0xffu];
    return ~c;
}
