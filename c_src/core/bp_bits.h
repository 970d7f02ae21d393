/* bp_bits.h - a double kept in a 64-bit atomic, bit for bit.
 *
 * C11 has no portable atomic double; the gate and the sampler store ratios
 * as their bit patterns in _Atomic uint64_t. memcpy is the defined way to
 * reinterpret them (no aliasing through pointers). */
#ifndef BP_BITS_H
#define BP_BITS_H

#include <stdint.h>
#include <string.h>

static inline uint64_t bp_bits_of(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static inline double bp_double_of(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

#endif
