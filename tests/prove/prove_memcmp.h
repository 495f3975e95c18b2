/*
 * tests/prove/prove_memcmp.h — memcmp with a body, for the EVA drivers that
 * compare names (prove_xml.c, prove_bosh.c). Frama-C 25 has no EVA builtin
 * for memcmp, and its libc contract gives any result, so every name
 * comparison would take both ways; this is the body of Frama-C's own libc
 * memcmp (libc/string.c), whose reads EVA checks. Include once per driver.
 */
#ifndef PROVE_MEMCMP_H
#define PROVE_MEMCMP_H

#include <stddef.h>

int memcmp(const void *s1, const void *s2, size_t n)
{
    const unsigned char *p1 = s1, *p2 = s2;
    size_t i;
    for (i = 0; i < n; i++)
        if (p1[i] != p2[i])
            return p1[i] - p2[i];
    return 0;
}

#endif
