/* Tiny unit-test harness: KT_CHECK records a failure and goes on; each test
 * binary ends with kt_summary(), which prints "  suite: N passed, N failed"
 * (indented: the suite totals of `make check` are the unindented lines) and
 * returns the exit code. tests/run_unit.sh adds the binaries' counts up. */
#ifndef KT_H
#define KT_H
#include <stdio.h>
#include <string.h>

static int kt_pass, kt_fail;
static const char *kt_current = "";

#define KT_CHECK(cond) do { if (cond) kt_pass++; else { kt_fail++; \
    fprintf(stderr, "FAIL %s:%d [%s]: %s\n", __FILE__, __LINE__, kt_current, #cond); } } while (0)
#define KT_CHECK_EQ(a, b) do { long long kt_a_ = (long long)(a), kt_b_ = (long long)(b); \
    if (kt_a_ == kt_b_) kt_pass++; else { kt_fail++; fprintf(stderr, \
    "FAIL %s:%d [%s]: %s == %s (%lld != %lld)\n", __FILE__, __LINE__, kt_current, #a, #b, kt_a_, kt_b_); } } while (0)
#define KT_CHECK_STR(a, b) do { const char *kt_a_ = (a), *kt_b_ = (b); \
    if (kt_a_ && kt_b_ && strcmp(kt_a_, kt_b_) == 0) kt_pass++; else { kt_fail++; fprintf(stderr, \
    "FAIL %s:%d [%s]: %s == %s (\"%s\" != \"%s\")\n", __FILE__, __LINE__, kt_current, #a, #b, \
    kt_a_ ? kt_a_ : "(null)", kt_b_ ? kt_b_ : "(null)"); } } while (0)
/* Deterministic stand-in for a port's entropy (kl_client_config_t.random):
 * a counter mixed into every byte, so ids differ and every run repeats. */
static unsigned long long kt_random_state = 0x9E3779B97F4A7C15ull;
static __attribute__((unused)) int kt_random(void *ctx, unsigned char *out, size_t len)
{
    size_t i;
    (void)ctx;
    for (i = 0; i < len; i++) {
        kt_random_state = kt_random_state * 6364136223846793005ull + 1442695040888963407ull;
        out[i] = (unsigned char)(kt_random_state >> 56);
    }
    return 0;
}

#define KT_RUN(fn) do { kt_current = #fn; fn(); } while (0)

static int kt_summary(const char *suite)
{
    printf("  %s: %d passed, %d failed\n", suite, kt_pass, kt_fail);
    return kt_fail ? 1 : 0;
}
#endif
