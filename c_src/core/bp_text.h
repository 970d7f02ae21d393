/* bp_text.h - parsing helpers for the small text files under /proc and /sys.
 *
 * Pure functions over a buffer and its end: no system calls, no allocation,
 * never a read past `end`. Used by bp_memory.c and bp_threads.c.
 */
#ifndef BP_TEXT_H
#define BP_TEXT_H

#include <stdint.h>

/* Parses an unsigned decimal at *s, advancing *s past it. Returns 0, or -1
 * if there is no digit at *s or the value overflows 64 bits. */
int bp_text_u64(const char **s, const char *end, uint64_t *out);

/* The first character at or after p that is not a space or a tab. */
const char *bp_text_skip_spaces(const char *p, const char *end);

#endif
