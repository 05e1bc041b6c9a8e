/*
 * Drives libturbolog through its C API the way a host would: dlopen, one shared handle,
 * four threads filtering real Fluent Bit buffers and real loghub lines at once.
 *
 * usage: c_api_test LIBTURBOLOG.so STATE_DIR FIXTURES_DIR LOGHUB_LOG
 * Prints "c_api_test: N passed, M failed" and exits non-zero on any failure.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../include/turbolog.h"

static const char *(*p_version)(void);
static int (*p_abi_version)(void);
static turbolog *(*p_new)(const char *);
static turbolog *(*p_new_kv)(const char *const *, const char *const *, size_t);
static int (*p_filter)(turbolog *, const void *, size_t, void **, size_t *);
static int (*p_flush)(turbolog *);
static void (*p_free)(void *);
static void (*p_destroy)(turbolog *);
static const char *(*p_last_error)(void);

static int passed, failed;
static pthread_mutex_t count_lock = PTHREAD_MUTEX_INITIALIZER;

static void check(int ok, const char *what) {
    pthread_mutex_lock(&count_lock);
    if (ok) {
        passed++;
    } else {
        failed++;
        fprintf(stderr, "FAILED: %s (last error: %s)\n", what, p_last_error());
    }
    pthread_mutex_unlock(&count_lock);
}

static unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* Occurrences of a byte string: counts tagged records by their "anomaly_score" key. */
static size_t count(const unsigned char *buf, size_t len, const char *needle, size_t nlen) {
    size_t c = 0;
    for (size_t i = 0; i + nlen <= len; i++) {
        if (memcmp(buf + i, needle, nlen) == 0) {
            c++;
        }
    }
    return c;
}

static const char SCORE_KEY[] = "\xad" "anomaly_score"; /* fixstr of 13 bytes */

/* Encodes [[EventTime(t, 0), {}], {"log": line}] for every line of a text file. */
static unsigned char *encode_lines(const unsigned char *text, size_t len, size_t *out_len, size_t *records) {
    unsigned char *out = malloc(len * 2 + 64);
    size_t o = 0, start = 0;
    *records = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || text[i] == '\n') {
            size_t n = i - start;
            if (n > 0 && text[start + n - 1] == '\r') {
                n--;
            }
            if (n > 0) {
                uint32_t t = 1700000000u + (uint32_t)*records;
                unsigned char head[] = {0x92, 0x92, 0xd7, 0x00, (unsigned char)(t >> 24), (unsigned char)(t >> 16),
                                        (unsigned char)(t >> 8), (unsigned char)t, 0, 0, 0, 0, 0x80, 0x81, 0xa3, 'l', 'o', 'g', 0xdb,
                                        (unsigned char)(n >> 24), (unsigned char)(n >> 16), (unsigned char)(n >> 8), (unsigned char)n};
                memcpy(out + o, head, sizeof head);
                o += sizeof head;
                memcpy(out + o, text + start, n);
                o += n;
                (*records)++;
            }
            start = i + 1;
        }
    }
    *out_len = o;
    return out;
}

struct job {
    turbolog *t;
    const unsigned char *data;
    size_t len;
    size_t records;
    int rounds;
    const char *name;
};

static void *worker(void *arg) {
    struct job *j = arg;
    char what[160];
    for (int r = 0; r < j->rounds; r++) {
        void *out = NULL;
        size_t out_len = 0;
        int rc = p_filter(j->t, j->data, j->len, &out, &out_len);
        snprintf(what, sizeof what, "%s round %d: TURBOLOG_MODIFIED", j->name, r);
        check(rc == TURBOLOG_MODIFIED && out != NULL, what);
        if (rc == TURBOLOG_MODIFIED) {
            size_t tagged = count(out, out_len, SCORE_KEY, sizeof SCORE_KEY - 1);
            snprintf(what, sizeof what, "%s round %d: %zu of %zu records tagged", j->name, r, tagged, j->records);
            check(tagged == j->records, what);
            snprintf(what, sizeof what, "%s round %d: output longer than input", j->name, r);
            check(out_len > j->len, what);
            p_free(out);
        }
    }
    return NULL;
}

/* Mutated real buffers: bytes flipped, cut short, spliced. Whatever arrives, the call returns
 * MODIFIED or NOTOUCH and the host's process goes on. */
struct mutation_job {
    turbolog *t;
    const unsigned char *data;
    size_t len;
    int calls;
    uint64_t seed;
};

static uint64_t next_random(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void *mutator(void *arg) {
    struct mutation_job *j = arg;
    unsigned char *buf = malloc(j->len + 64);
    int bad = 0;
    for (int c = 0; c < j->calls; c++) {
        /* a window of the buffer, so every call starts somewhere else */
        size_t start = next_random(&j->seed) % (j->len / 2);
        size_t len = 1 + next_random(&j->seed) % (j->len - start);
        if (len > 4096) {
            len = 4096;
        }
        memcpy(buf, j->data + start, len);
        int flips = 1 + (int)(next_random(&j->seed) % 8);
        for (int f = 0; f < flips; f++) {
            buf[next_random(&j->seed) % len] ^= (unsigned char)(1u << (next_random(&j->seed) % 8));
        }
        if (next_random(&j->seed) % 4 == 0) {
            len = 1 + next_random(&j->seed) % len; /* cut short */
        }
        void *out = NULL;
        size_t out_len = 0;
        int rc = p_filter(j->t, buf, len, &out, &out_len);
        if (!(rc == TURBOLOG_MODIFIED && out != NULL) && !(rc == TURBOLOG_NOTOUCH && out == NULL)) {
            bad++;
        }
        if (out) {
            p_free(out);
        }
    }
    free(buf);
    check(bad == 0, "mutated buffers: every call returns MODIFIED with a buffer or NOTOUCH without");
    return NULL;
}

#define LOAD(var, name)                                                   \
    do {                                                                  \
        *(void **)(&var) = dlsym(lib, name);                              \
        if (!var) {                                                       \
            fprintf(stderr, "symbol %s missing: %s\n", name, dlerror()); \
            return 2;                                                     \
        }                                                                 \
    } while (0)

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s LIB STATE_DIR FIXTURES_DIR LOGHUB_LOG\n", argv[0]);
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 2;
    }
    LOAD(p_version, "turbolog_version");
    LOAD(p_abi_version, "turbolog_abi_version");
    LOAD(p_new, "turbolog_new");
    LOAD(p_new_kv, "turbolog_new_kv");
    LOAD(p_filter, "turbolog_filter");
    LOAD(p_flush, "turbolog_flush");
    LOAD(p_free, "turbolog_free");
    LOAD(p_destroy, "turbolog_destroy");
    LOAD(p_last_error, "turbolog_last_error");

    check(p_abi_version() == TURBOLOG_ABI_VERSION, "ABI version matches the header");
    check(strlen(p_version()) >= 5, "version string");

    /* bad configs fail cleanly with a message */
    check(p_new("{\"bogus\": 1}") == NULL && strstr(p_last_error(), "unknown property `bogus`") != NULL,
          "unknown property is refused with a message");
    check(p_new("{not json") == NULL && strstr(p_last_error(), "not a JSON object") != NULL, "malformed JSON config");
    const char *keys[] = {"mode"}, *bad_values[] = {"sideways"};
    check(p_new_kv(keys, bad_values, 1) == NULL && strstr(p_last_error(), "mode") != NULL, "bad value via key/value");
    check(p_filter(NULL, "", 0, NULL, NULL) == TURBOLOG_ERROR, "NULL handle is an error, not a crash");
    p_destroy(NULL);

    char config[4096];
    snprintf(config, sizeof config, "{\"state_dir\": \"%s\", \"window\": 0}", argv[2]);
    turbolog *t = p_new(config);
    check(t != NULL, "handle from JSON config");
    if (!t) {
        return 1;
    }

    /* garbage passes through untouched */
    void *out = NULL;
    size_t out_len = 0;
    const unsigned char garbage[] = {0xc1, 0x92, 0x01};
    check(p_filter(t, garbage, sizeof garbage, &out, &out_len) == TURBOLOG_NOTOUCH && out == NULL, "corrupt buffer: NOTOUCH");

    char path[4096];
    size_t tail_len, dummy_len, log_len, lines_len, lines_records;
    snprintf(path, sizeof path, "%s/tail_openssh.msgpack", argv[3]);
    unsigned char *tail = read_file(path, &tail_len);
    snprintf(path, sizeof path, "%s/dummy_meta.msgpack", argv[3]);
    unsigned char *dummy = read_file(path, &dummy_len);
    unsigned char *log = read_file(argv[4], &log_len);
    unsigned char *lines = encode_lines(log, log_len, &lines_len, &lines_records);

    struct job jobs[4] = {
        {t, tail, tail_len, 1999, 3, "tail_openssh fixture A"},
        {t, tail, tail_len, 1999, 3, "tail_openssh fixture B"},
        {t, dummy, dummy_len, 3, 50, "dummy_meta fixture"},
        {t, lines, lines_len, lines_records, 3, "loghub lines"},
    };
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) {
        pthread_create(&threads[i], NULL, worker, &jobs[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
    }

    /* 4 threads x 3000 calls with mutated real buffers, on the same handle */
    struct mutation_job mutations[4] = {
        {t, tail, tail_len, 3000, 0x9e3779b97f4a7c15ull},
        {t, tail, tail_len, 3000, 0xbf58476d1ce4e5b9ull},
        {t, dummy, dummy_len, 3000, 0x94d049bb133111ebull},
        {t, lines, lines_len, 3000, 0x2545f4914f6cdd1dull},
    };
    for (int i = 0; i < 4; i++) {
        pthread_create(&threads[i], NULL, mutator, &mutations[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
    }

    check(p_flush(t) == 0, "flush seals the window");
    snprintf(path, sizeof path, "%s/templates.tls", argv[2]);
    struct stat st;
    check(stat(path, &st) == 0 && st.st_size > 100, "state saved in state_dir");
    p_destroy(t);

    /* a second handle on the same state continues from it: known lines are no longer new */
    turbolog *again = p_new(config);
    check(again != NULL, "reopen on saved state");
    if (again) {
        int rc = p_filter(again, dummy, dummy_len, &out, &out_len);
        check(rc == TURBOLOG_MODIFIED && count(out, out_len, "\xa7" "anomaly\xc2", 8) == 3, "known records are normal after reopen");
        if (rc == TURBOLOG_MODIFIED) {
            p_free(out);
        }
        p_destroy(again);
    }
    free(tail);
    free(dummy);
    free(log);
    free(lines);
    printf("c_api_test: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
