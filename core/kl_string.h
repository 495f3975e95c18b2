/* kinglet — the only libc core/ uses: mem* and str*. Freestanding
 * toolchains without libc headers (riscv64-unknown-elf here) get the
 * standard prototypes; the firmware's libc or compiler builtins supply them. */
#ifndef KINGLET_KL_STRING_H
#define KINGLET_KL_STRING_H

#include <stddef.h>

#if defined(__has_include)
#if __has_include(<string.h>)
#include <string.h>
#define KL_HAVE_STRING_H 1
#endif
#endif

#ifndef KL_HAVE_STRING_H
void *memcpy(void *restrict dst, const void *restrict src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
void *memchr(const void *s, int c, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strchr(const char *s, int c);
#endif

#endif
