/*
 * tests/fuzz/replay.c — a main() for a libFuzzer harness without libFuzzer:
 * runs LLVMFuzzerTestOneInput once on each file named on the command line,
 * in order. `make coverage` links every harness with it and the coverage
 * build of core/, and replays the committed corpora and regressions, so the
 * inputs the fuzzers found count towards core/'s coverage. Each input gets
 * a buffer of exactly its size, as under libFuzzer.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPLAY_MAX (1u << 20)

int main(int argc, char **argv)
{
    static uint8_t buf[REPLAY_MAX];
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) {
            fprintf(stderr, "replay: cannot open %s\n", argv[i]);
            return 2;
        }
        size_t n = fread(buf, 1, sizeof buf, f);
        int big = n == sizeof buf && fgetc(f) != EOF;
        fclose(f);
        if (big) {
            fprintf(stderr, "replay: %s is over %u bytes\n", argv[i], REPLAY_MAX);
            return 2;
        }
        uint8_t *p = malloc(n ? n : 1);
        if (!p)
            return 2;
        memcpy(p, buf, n);
        LLVMFuzzerTestOneInput(p, n);
        free(p);
    }
    return 0;
}
