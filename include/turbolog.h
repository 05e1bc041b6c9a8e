/*
 * turbolog.h — C API of libturbolog: log anomaly detection inside any host process.
 *
 * ABI version 1. Link with -lturbolog (libturbolog.so) or dlopen it.
 *
 * A handle scores buffers of Fluent Bit-style msgpack records (a concatenation of
 * [[EventTime, metadata], body] or [time, body]) and returns a new buffer in which each record
 * with a string message gets five fields: anomaly (bool), anomaly_score (float 0..1),
 * template_id (uint), template (str), anomaly_reason (str, nil when normal). Field names,
 * message keys and everything else are set in the config (see `turbolog plugin-props`).
 *
 * Thread safety: every function may be called from any thread, and one handle may be used by
 * several threads at once. Handles with the same state_dir in one process share one engine.
 * No function panics across the ABI or aborts the host: errors are return codes, and
 * turbolog_last_error() says what was wrong and what to do.
 */
#ifndef TURBOLOG_H
#define TURBOLOG_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TURBOLOG_ABI_VERSION 1

/* Return codes of turbolog_filter (the first two equal Fluent Bit's FLB_FILTER_*). */
#define TURBOLOG_MODIFIED 1   /* *out_buf holds the new records; free it with turbolog_free */
#define TURBOLOG_NOTOUCH  2   /* nothing changed; *out_buf is NULL, keep using the input */
#define TURBOLOG_ERROR   -1   /* see turbolog_last_error(); the input is unchanged */

typedef struct turbolog turbolog;

/* The library version, e.g. "0.1.0". Static string. */
const char *turbolog_version(void);

/* TURBOLOG_ABI_VERSION of the loaded library. */
int turbolog_abi_version(void);

/* Creates a handle from a JSON object of properties, e.g.
 *   {"state_dir": "/var/lib/turbolog", "message_key": "log", "mode": "tag"}
 * NULL or "" means all defaults. Returns NULL on a bad config (unknown property, bad value,
 * unreadable state): turbolog_last_error() says which. */
turbolog *turbolog_new(const char *config_json);

/* The same from n key/value pairs of C strings. */
turbolog *turbolog_new_kv(const char *const *keys, const char *const *values, size_t n);

/* Scores the records in data[0..len) and learns from them. On TURBOLOG_MODIFIED, *out_buf
 * (allocated with malloc) and *out_len hold the output; *out_len may be 0 when mode is
 * only_anomalies and no record was anomalous. With "reduce": "on", records held back are not in
 * the output, and at a window's end its summary records follow; an empty buffer (len 0) ends the
 * window now and returns its summaries (call it before turbolog_destroy to get the last ones).
 * With sessions on, an empty buffer is also the host's clock while its input is quiet: sessions
 * over by now (as learned, or past session_idle, record time moving on with the wall clock since
 * the last record) close, and their verdict records are returned. Call it every second or so. */
int turbolog_filter(turbolog *t, const void *data, size_t len, void **out_buf, size_t *out_len);

/* Seals the window: saves what was learned to state_dir now. 0 on success, -1 on error. */
int turbolog_flush(turbolog *t);

/* Frees a buffer returned by turbolog_filter (same as free()). */
void turbolog_free(void *buf);

/* Flushes and releases the handle. NULL is ignored. */
void turbolog_destroy(turbolog *t);

/* The last error on the calling thread, or "" if none. Valid until the next call on this
 * thread. */
const char *turbolog_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* TURBOLOG_H */
