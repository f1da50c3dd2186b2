/* safetensors: an 8-byte little-endian header length, a JSON header
 *   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ..., "__metadata__": {..}}
 * and the raw little-endian tensor bytes. Files are hostile input: the reader accepts strict JSON in valid
 * UTF-8 only, checks every shape's element count for overflow against its byte range, and requires the
 * tensors to tile the data exactly (no overlaps, no holes), as the format's specification does. Writing
 * goes to a temporary file that replaces the target only once it is complete and synced. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

typedef struct {
    char *name;
    int dtype;          /* the file's dtype, see dtypes[] */
    int ndim;
    int64_t shape[TS_MAX_DIMS];
    uint64_t begin, end;   /* byte range within the data, which starts after the header */
} entry;

struct ts_safetensors {
    char *path;
    unsigned char *bytes;   /* the whole file */
    size_t size, data_start;
    entry *entries;
    int count, capacity;
    char *metadata;
};

/* file dtypes; F16 and BF16 are widened to float32 on load */
static const struct { const char *name; int size, ts; } dtypes[] = {
    {"F32", 4, TS_FLOAT32}, {"U8", 1, TS_UINT8}, {"I32", 4, TS_INT32}, {"I64", 8, TS_INT64},
    {"F64", 8, TS_FLOAT64}, {"F16", 2, TS_FLOAT32}, {"BF16", 2, TS_FLOAT32},
};
enum { N_DTYPES = sizeof dtypes / sizeof dtypes[0], DT_F16 = 5, DT_BF16 = 6 };

/* ---- names in JSON and in messages ---- */

/* one byte of a string as JSON writes it: itself, or an escape for '"', '\' and control characters */
static const char *json_char(unsigned char c, char out[8])
{
    if (c == '"' || c == '\\') snprintf(out, 8, "\\%c", c);
    else if (c < 0x20) snprintf(out, 8, "\\u%04x", c);
    else out[0] = (char)c, out[1] = 0;
    return out;
}

/* s[0..n) as a JSON string literal for a message, so that a NUL or a newline in a name shows; cut short
 * with "... when it does not fit size (at least 6) bytes */
static const char *quoted(char *buf, size_t size, const char *s, size_t n)
{
    size_t at = 0;
    buf[at++] = '"';
    for (size_t i = 0; i < n; i++) {   /* invariant: at + 5 <= size, room for "... and the NUL */
        char c[8];
        size_t k = strlen(json_char((unsigned char)s[i], c));
        if (at + k + 5 > size) {
            strcpy(buf + at, "\"...");
            return buf;
        }
        memcpy(buf + at, c, k);
        at += k;
    }
    strcpy(buf + at, "\"");
    return buf;
}

enum { QUOTED = 96 };   /* a name's room in messages */

/* ---- a strict JSON reader, enough for safetensors headers ---- */

typedef struct {
    const char *s, *end, *file, *path;
    char tensor[QUOTED];   /* the entry being read, quoted, for messages; "" outside entries */
    int failed;
} json;

static int jfail(json *j, const char *fmt, ...)
{
    if (j->failed) return -1;
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    ts_error("%s: safetensors header, byte %zu%s%s: %s", j->path, (size_t)(j->s - j->file),
             *j->tensor ? ", tensor " : "", j->tensor, what);
    j->failed = 1;
    return -1;
}

static void ws(json *j)
{
    while (j->s < j->end && (*j->s == ' ' || *j->s == '\n' || *j->s == '\r' || *j->s == '\t')) j->s++;
}

static int expect(json *j, char c)
{
    ws(j);
    if (j->s >= j->end || *j->s != c) return jfail(j, "expected '%c'", c);
    j->s++;
    return 0;
}

/* after an element of an object or array: 1 when another follows (the ',' read), 0 at the close */
static int more(json *j, char close)
{
    ws(j);
    if (j->s < j->end && *j->s == ',') return j->s++, 1;
    if (j->s < j->end && *j->s == close) return j->s++, 0;
    return jfail(j, "expected ',' or '%c'", close);
}

/* 1 when an empty object or array closes here (the close read) */
static int closes_at_once(json *j, char close)
{
    ws(j);
    return j->s < j->end && *j->s == close ? (j->s++, 1) : 0;
}

static int hex4(json *j, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char h = j->s < j->end ? *j->s++ : 0;
        int d = h >= '0' && h <= '9'   ? h - '0'
                : h >= 'a' && h <= 'f' ? h - 'a' + 10
                : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                       : -1;
        if (d < 0) return jfail(j, "a \\u escape needs 4 hex digits");
        *v = *v * 16 + (unsigned)d;
    }
    return 0;
}

/* the code point of a \uXXXX escape (its \u read), a UTF-16 surrogate pair joined, written to o as UTF-8;
 * returns the bytes written (at most 4, never more than the escape's 6 or 12 characters) or -1 */
static int unicode_escape(json *j, char *o)
{
    unsigned v, lo;
    if (hex4(j, &v)) return -1;
    if (v >= 0xDC00 && v <= 0xDFFF) return jfail(j, "a \\u escape holds a lone low surrogate");
    if (v >= 0xD800 && v <= 0xDBFF) {
        if (j->end - j->s < 2 || j->s[0] != '\\' || j->s[1] != 'u') return jfail(j, "a high surrogate lacks its low half");
        j->s += 2;
        if (hex4(j, &lo)) return -1;
        if (lo < 0xDC00 || lo > 0xDFFF) return jfail(j, "a high surrogate lacks its low half");
        v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
    }
    if (v < 0x80) return o[0] = (char)v, 1;
    if (v < 0x800) return o[0] = (char)(0xC0 | v >> 6), o[1] = (char)(0x80 | (v & 0x3F)), 2;
    if (v < 0x10000)
        return o[0] = (char)(0xE0 | v >> 12), o[1] = (char)(0x80 | (v >> 6 & 0x3F)), o[2] = (char)(0x80 | (v & 0x3F)), 3;
    o[0] = (char)(0xF0 | v >> 18), o[1] = (char)(0x80 | (v >> 12 & 0x3F));
    o[2] = (char)(0x80 | (v >> 6 & 0x3F)), o[3] = (char)(0x80 | (v & 0x3F));
    return 4;
}

static char *jstring_fail(json *j, char *out, const char *what)
{
    free(out);
    jfail(j, "%s", what);
    return NULL;
}

/* a string, decoded; *len is its length, more than strlen() when it holds a \u0000 */
static char *jstring(json *j, size_t *len)
{
    static const char simple[] = "\"\\/bfnrtu", meaning[] = "\"\\/\b\f\n\r\t";   /* \u last: decoded apart */
    if (expect(j, '"')) return NULL;
    char *out = malloc((size_t)(j->end - j->s) + 1), *o = out;   /* decoding never lengthens */
    if (!out) return jstring_fail(j, out, "out of memory");
    for (;;) {
        if (j->s >= j->end) return jstring_fail(j, out, "unterminated string");
        unsigned char c = (unsigned char)*j->s++;
        if (c == '"') break;
        if (c < 0x20) return jstring_fail(j, out, "a control character inside a string (JSON needs an escape)");
        if (c != '\\') {
            *o++ = (char)c;
            continue;
        }
        const char *e = j->s < j->end && *j->s ? strchr(simple, *j->s) : NULL;
        if (!e) return jstring_fail(j, out, "an unknown escape in a string");
        j->s++;
        if (*e != 'u') {
            *o++ = meaning[e - simple];
            continue;
        }
        int n = unicode_escape(j, o);
        if (n < 0) return free(out), NULL;
        o += n;
    }
    *o = 0;
    *len = (size_t)(o - out);
    return out;
}

static int key_is(const char *key, size_t len, const char *name) { return len == strlen(name) && !memcmp(key, name, len); }

static int digits(json *j)
{
    const char *at = j->s;
    while (j->s < j->end && *j->s >= '0' && *j->s <= '9') j->s++;
    return (int)(j->s - at);
}

/* a non-negative integer up to INT64_MAX (shape sizes and byte offsets both become int64) */
static int jint(json *j, uint64_t *v)
{
    ws(j);
    const char *at = j->s;
    if (!digits(j)) return jfail(j, "expected a non-negative integer");
    if (*at == '0' && j->s - at > 1) return jfail(j, "a number with a leading zero");
    if (j->s < j->end && (*j->s == '.' || *j->s == 'e' || *j->s == 'E')) return jfail(j, "expected an integer");
    uint64_t x = 0;
    for (; at < j->s; at++) {
        if (x > ((uint64_t)INT64_MAX - (uint64_t)(*at - '0')) / 10) return jfail(j, "integer too large");
        x = x * 10 + (uint64_t)(*at - '0');
    }
    *v = x;
    return 0;
}

/* a number as JSON spells it: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int skip_number(json *j)
{
    if (j->s < j->end && *j->s == '-') j->s++;
    const char *at = j->s;
    int n = digits(j);
    if (!n || (*at == '0' && n > 1)) return jfail(j, "expected a value");
    if (j->s < j->end && *j->s == '.' && (j->s++, !digits(j))) return jfail(j, "expected digits after '.'");
    if (j->s < j->end && (*j->s == 'e' || *j->s == 'E')) {
        j->s++;
        if (j->s < j->end && (*j->s == '+' || *j->s == '-')) j->s++;
        if (!digits(j)) return jfail(j, "expected an exponent");
    }
    return 0;
}

/* an object: member(j, key, len, ctx) reads each member's value; the key is freed after it returns */
typedef int (*jmember)(json *j, const char *key, size_t len, void *ctx);
static int jobject(json *j, jmember member, void *ctx)
{
    if (expect(j, '{')) return -1;
    if (closes_at_once(j, '}')) return 0;
    int next;
    do {
        size_t len;
        char *key = jstring(j, &len);
        int rc = !key || expect(j, ':') || member(j, key, len, ctx);
        free(key);
        if (rc) return -1;
    } while ((next = more(j, '}')) == 1);
    return next;
}

/* an array: element(j, ctx) reads each element */
static int jarray(json *j, int (*element)(json *j, void *ctx), void *ctx)
{
    if (expect(j, '[')) return -1;
    if (closes_at_once(j, ']')) return 0;
    int next;
    do {
        if (element(j, ctx)) return -1;
    } while ((next = more(j, ']')) == 1);
    return next;
}

static int skip_value(json *j, int depth);
static int skip_member(json *j, const char *key, size_t len, void *depth) { return skip_value(j, *(int *)depth + 1); }
static int skip_element(json *j, void *depth) { return skip_value(j, *(int *)depth + 1); }

static int skip_literal(json *j, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(j->end - j->s) < n || memcmp(j->s, word, n)) return jfail(j, "expected a value");
    j->s += n;
    return 0;
}

/* any value, checked and passed over (members of an entry tshost does not use) */
static int skip_value(json *j, int depth)
{
    ws(j);
    if (depth > 64) return jfail(j, "nested too deeply");
    if (j->s >= j->end) return jfail(j, "unexpected end");
    size_t len;
    char *s;
    switch (*j->s) {
    case '"': return (s = jstring(j, &len)) ? (free(s), 0) : -1;
    case '{': return jobject(j, skip_member, &depth);
    case '[': return jarray(j, skip_element, &depth);
    case 't': return skip_literal(j, "true");
    case 'f': return skip_literal(j, "false");
    case 'n': return skip_literal(j, "null");
    default: return skip_number(j);
    }
}

/* ---- the header ---- */

/* __metadata__: an object of strings, kept as its JSON text (the bindings decode it) */
static int string_member(json *j, const char *key, size_t len, void *ctx)
{
    size_t value_len;
    char *s = (ws(j), j->s < j->end && *j->s == '"') ? jstring(j, &value_len) : NULL;
    if (!s) return jfail(j, "__metadata__ values must be strings");   /* no-op after jstring's own error */
    free(s);
    return 0;
}

static int parse_metadata(json *j, ts_safetensors *f)
{
    if (f->metadata) return jfail(j, "__metadata__ appears twice");
    const char *start = (ws(j), j->s);
    if (jobject(j, string_member, NULL)) return -1;
    f->metadata = strndup(start, (size_t)(j->s - start));
    return f->metadata ? 0 : jfail(j, "out of memory");
}

typedef struct {
    uint64_t *v;
    int n, max;
    const char *what;
} int_list;

static int int_element(json *j, void *ctx)
{
    int_list *l = ctx;
    if (l->n == l->max) return jfail(j, "%s: more than %d numbers", l->what, l->max);
    return jint(j, &l->v[l->n++]);
}

static int parse_dtype(json *j, entry *e)
{
    size_t len;
    char *d = jstring(j, &len);
    if (!d) return -1;
    e->dtype = -1;
    for (int i = 0; i < N_DTYPES; i++)
        if (key_is(d, len, dtypes[i].name)) e->dtype = i;
    if (e->dtype < 0) {
        char q[QUOTED];
        jfail(j, "dtype %s, which tshost does not read (F32, F64, F16, BF16, U8, I32, I64)", quoted(q, sizeof q, d, len));
    }
    free(d);
    return e->dtype < 0 ? -1 : 0;
}

typedef struct {
    entry *e;
    int seen;   /* bits: 1 dtype, 2 shape, 4 data_offsets */
} entry_fields;

static int entry_member(json *j, const char *key, size_t len, void *ctx)
{
    entry_fields *p = ctx;
    entry *e = p->e;
    int field = key_is(key, len, "dtype") ? 1 : key_is(key, len, "shape") ? 2 : key_is(key, len, "data_offsets") ? 4 : 0;
    if (!field) return skip_value(j, 1);
    if (p->seen & field) return jfail(j, "%s appears twice", key);
    p->seen |= field;
    if (field == 1) return parse_dtype(j, e);
    uint64_t v[TS_MAX_DIMS];
    if (field == 2) {
        int_list l = {v, 0, TS_MAX_DIMS, "shape (tshost holds at most 5 dims)"};
        if (jarray(j, int_element, &l)) return -1;
        e->ndim = l.n;
        for (int d = 0; d < l.n; d++) e->shape[d] = (int64_t)v[d];
        return 0;
    }
    int_list l = {v, 0, 2, "data_offsets"};
    if (jarray(j, int_element, &l)) return -1;
    if (l.n != 2) return jfail(j, "data_offsets must be [begin, end]");
    e->begin = v[0];
    e->end = v[1];
    return 0;
}

/* an error about one tensor: "path: tensor "name": ..." */
static int entry_error(const ts_safetensors *f, const entry *e, const char *fmt, ...)
{
    char what[512], q[QUOTED];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return ts_error("%s: tensor %s: %s", f->path, quoted(q, sizeof q, e->name, strlen(e->name)), what);
}

/* An entry's byte range against its shape and the file. The element count is checked for overflow
 * first: a wrapped product ([2^32, 2^32, 3] elements) would otherwise pass as a small one. */
static int check_entry(const ts_safetensors *f, const entry *e)
{
    char q[QUOTED];
    size_t size = strlen(f->path) + sizeof q + 16;
    char *what = malloc(size);   /* "path: tensor "name"", the prefix of ts_shape_bytes's errors */
    if (!what) return ts_error("out of memory");
    snprintf(what, size, "%s: tensor %s", f->path, quoted(q, sizeof q, e->name, strlen(e->name)));
    int64_t numel, bytes;
    int rc = ts_shape_bytes(what, e->ndim, e->shape, dtypes[e->dtype].size, &numel, &bytes);
    free(what);
    if (rc) return -1;
    uint64_t data = f->size - f->data_start;
    if (e->end < e->begin)
        return entry_error(f, e, "data_offsets [%llu, %llu] run backwards", (unsigned long long)e->begin,
                           (unsigned long long)e->end);
    if (e->end > data)
        return entry_error(f, e, "truncated: ends at byte %llu of the data but the file holds %llu",
                           (unsigned long long)e->end, (unsigned long long)data);
    if (e->end - e->begin != (uint64_t)bytes)
        return entry_error(f, e, "data_offsets [%llu, %llu] hold %llu bytes, but %lld elements of %s take %lld",
                           (unsigned long long)e->begin, (unsigned long long)e->end,
                           (unsigned long long)(e->end - e->begin), (long long)numel, dtypes[e->dtype].name,
                           (long long)bytes);
    return 0;
}

static int header_member(json *j, const char *key, size_t len, void *ctx)
{
    ts_safetensors *f = ctx;
    if (key_is(key, len, "__metadata__")) return parse_metadata(j, f);
    char q[QUOTED];
    if (strlen(key) != len) return jfail(j, "tensor name %s holds a NUL character", quoted(q, sizeof q, key, len));
    if (f->count == f->capacity) {
        int capacity = f->capacity ? 2 * f->capacity : 16;
        entry *more_entries = realloc(f->entries, sizeof(entry) * (size_t)capacity);
        if (!more_entries) return jfail(j, "out of memory");
        f->entries = more_entries;
        f->capacity = capacity;
    }
    entry *e = &f->entries[f->count];
    memset(e, 0, sizeof *e);
    if (!(e->name = strdup(key))) return jfail(j, "out of memory");
    f->count++;
    quoted(j->tensor, sizeof j->tensor, key, len);
    entry_fields fields = {e, 0};
    if (jobject(j, entry_member, &fields)) return -1;
    if (fields.seen != 7)
        return jfail(j, "the entry lacks %s", !(fields.seen & 1) ? "dtype" : !(fields.seen & 2) ? "shape" : "data_offsets");
    j->tensor[0] = 0;
    return check_entry(f, e);
}

/* the offset of the first byte that is not well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates,
 * nothing past U+10FFFF), or n */
static size_t utf8_prefix(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        int follow = c < 0x80 ? 0 : c >= 0xC2 && c <= 0xDF ? 1 : c >= 0xE0 && c <= 0xEF ? 2
                   : c >= 0xF0 && c <= 0xF4 ? 3 : -1;   /* C0, C1 and F5.. never start a character */
        if (follow < 0 || (size_t)follow >= n - i) return i;
        /* the second byte's range, narrower after E0 (overlong), ED (surrogates), F0 (overlong), F4 (> U+10FFFF) */
        unsigned lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80, hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
        for (int k = 1; k <= follow; k++, lo = 0x80, hi = 0xBF)
            if (s[i + (size_t)k] < lo || s[i + (size_t)k] > hi) return i;
        i += (size_t)follow + 1;
    }
    return n;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp((*(const entry *const *)a)->name, (*(const entry *const *)b)->name);
}

static int cmp_offsets(const void *a, const void *b)
{
    const entry *x = *(const entry *const *)a, *y = *(const entry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

/* a hole in the data: bytes from..to that no tensor holds */
static int hole_error(const ts_safetensors *f, uint64_t from, uint64_t to, const entry *before, const entry *after)
{
    char q[QUOTED];
    const entry *near = before ? before : after;
    return ts_error("%s: bytes %llu..%llu of the data belong to no tensor%s%s%s", f->path, (unsigned long long)from,
                    (unsigned long long)to, near ? (before ? " (after tensor " : " (before tensor ") : "",
                    near ? quoted(q, sizeof q, near->name, strlen(near->name)) : "", near ? ")" : "");
}

/* Names are unique, and every byte of the data belongs to exactly one tensor, as the format requires ("the
 * byte buffer needs to be entirely indexed, and cannot contain holes", which keeps polyglot files out):
 * sorted by offsets, each tensor begins where the one before it ends, and the last ends with the file.
 * Zero-size tensors ([x, x]) fit anywhere between two others. */
static int check_layout(const ts_safetensors *f)
{
    const entry **by = malloc(sizeof *by * (size_t)(f->count ? f->count : 1));
    if (!by) return ts_error("out of memory");
    for (int i = 0; i < f->count; i++) by[i] = &f->entries[i];
    qsort(by, (size_t)f->count, sizeof *by, cmp_names);
    int rc = 0;
    for (int i = 1; i < f->count && !rc; i++)
        if (!strcmp(by[i - 1]->name, by[i]->name)) rc = entry_error(f, by[i], "appears twice");
    qsort(by, (size_t)f->count, sizeof *by, cmp_offsets);
    uint64_t at = 0;
    for (int i = 0; i <= f->count && !rc; i++) {
        uint64_t begin = i < f->count ? by[i]->begin : f->size - f->data_start;
        const entry *prev = i ? by[i - 1] : NULL, *next = i < f->count ? by[i] : NULL;
        if (begin < at) {
            char q[QUOTED];
            rc = entry_error(f, next, "bytes %llu..%llu overlap those of tensor %s (%llu..%llu)",
                             (unsigned long long)next->begin, (unsigned long long)next->end,
                             quoted(q, sizeof q, prev->name, strlen(prev->name)), (unsigned long long)prev->begin,
                             (unsigned long long)prev->end);
        } else if (begin > at) {
            rc = hole_error(f, at, begin, prev, next);
        }
        if (next) at = next->end;
    }
    free(by);
    return rc;
}

void ts_safetensors_close(ts_safetensors *f)
{
    if (!f) return;
    for (int i = 0; i < f->count; i++) free(f->entries[i].name);
    free(f->entries);
    free(f->metadata);
    free(f->bytes);
    free(f->path);
    free(f);
}

/* The header: its length field, UTF-8, one JSON object from its first byte, then only spaces. */
static int parse_header(ts_safetensors *f)
{
    if (f->size < 8)
        return ts_error("%s: not a safetensors file (%zu bytes, shorter than the 8-byte header length)", f->path, f->size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | f->bytes[i];
    if (hlen > f->size - 8)
        return ts_error("%s: truncated: the header claims %llu bytes but the file has %zu after the length", f->path,
                        (unsigned long long)hlen, f->size - 8);
    f->data_start = 8 + (size_t)hlen;
    json j = {(const char *)f->bytes + 8, (const char *)f->bytes + f->data_start, (const char *)f->bytes, f->path, "", 0};
    size_t valid = utf8_prefix(f->bytes + 8, (size_t)hlen);
    if (valid < hlen) {
        j.s += valid;
        return jfail(&j, "not UTF-8");
    }
    if (!hlen || *j.s != '{') return jfail(&j, "the header must begin with '{'");
    if (jobject(&j, header_member, f)) return -1;
    ws(&j);
    if (j.s < j.end) return jfail(&j, "characters after the header's object");
    return check_layout(f);
}

/* A safetensors file's header begins with '{' at byte 8, after its length; anything else (a torch.save file
 * named .safetensors, /dev/zero) is refused before the rest is read, named for what it is when its first
 * bytes say. A cut safetensors file still has its '{' and is read, to be called truncated. */
static int safetensors_first_bytes(const char *path, const unsigned char *b, size_t n)
{
    if (n <= 8 || b[8] == '{') return 0;
    const char *kind = ts_file_kind(b, n, NULL);
    if (kind) return ts_error("%s: is %s, not a safetensors file", path, kind);
    return ts_error("%s: not a safetensors file: the header must begin with '{' at byte 8, after its length (0x%02x "
                    "there)", path, b[8]);
}

ts_safetensors *ts_safetensors_open(const char *path)
{
    ts_safetensors *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        ts_error("out of memory");
        return NULL;
    }
    if (!(f->bytes = ts_read_file(path, SIZE_MAX, &f->size, safetensors_first_bytes)) || parse_header(f)) {
        ts_safetensors_close(f);
        return NULL;
    }
    return f;
}

int ts_safetensors_count(const ts_safetensors *f) { return f->count; }

const char *ts_safetensors_name(const ts_safetensors *f, int i)
{
    return i >= 0 && i < f->count ? f->entries[i].name : NULL;
}

const char *ts_safetensors_dtype(const ts_safetensors *f, int i)
{
    return i >= 0 && i < f->count ? dtypes[f->entries[i].dtype].name : NULL;
}

const char *ts_safetensors_metadata(const ts_safetensors *f) { return f->metadata ? f->metadata : "{}"; }

ts_tensor *ts_safetensors_tensor(const ts_safetensors *f, int i)
{
    if (i < 0 || i >= f->count) {
        ts_error("%s: no tensor number %d", f->path, i + 1);
        return NULL;
    }
    const entry *e = &f->entries[i];
    const unsigned char *src = f->bytes + f->data_start + e->begin;
    int half = e->dtype == DT_F16 || e->dtype == DT_BF16;
    ts_tensor *t = half ? ts_tensor_new(TS_FLOAT32, e->ndim, e->shape)
                        : ts_tensor_from_buffer(dtypes[e->dtype].ts, e->ndim, e->shape, src);
    if (!t) return NULL;
    int64_t n = ts_tensor_numel(t);
    if (half) {
        float *out = ts_f32(t);
        for (int64_t k = 0; k < n; k++) {
            uint16_t h = (uint16_t)(src[2 * k] | src[2 * k + 1] << 8);
            if (e->dtype == DT_F16) out[k] = ts_half_to_float(h);
            else {
                uint32_t bits = (uint32_t)h << 16;
                memcpy(&out[k], &bits, 4);
            }
        }
    }
    ts_tensor_plain_nans(t);
    return t;
}

/* ---- writing ---- */

static void json_escaped(FILE *fp, const char *s)
{
    char c[8];
    fputc('"', fp);
    for (; *s; s++) fputs(json_char((unsigned char)*s, c), fp);
    fputc('"', fp);
}

int ts_safetensors_write(const char *path, int count, const char *const *names, ts_tensor *const *tensors,
                         const char *metadata_json)
{
    static const char *file_dtype[] = {"F32", "U8", "I32", "I64", "F64"};
    for (int i = 0; i < count; i++)
        for (int k = 0; k < i; k++)
            if (!strcmp(names[i], names[k])) return ts_error("%s: tensor name '%s' given twice", path, names[i]);
    /* the header first, in memory, so its length is known */
    char *header = NULL;
    size_t hlen = 0;
    FILE *h = open_memstream(&header, &hlen);
    if (!h) return ts_error("out of memory");
    fputc('{', h);
    /* no comma after the metadata when no tensor follows: {"__metadata__":{..},} was a file no reader took */
    if (metadata_json && *metadata_json) fprintf(h, "\"__metadata__\":%s%s", metadata_json, count ? "," : "");
    uint64_t offset = 0;
    for (int i = 0; i < count; i++) {
        const ts_tensor *t = tensors[i];
        uint64_t bytes = (uint64_t)ts_tensor_numel(t) * (uint64_t)ts_dtype_size(t->dtype);
        json_escaped(h, names[i]);
        fprintf(h, ":{\"dtype\":\"%s\",\"shape\":[", file_dtype[t->dtype]);
        for (int d = 0; d < t->ndim; d++) fprintf(h, d ? ",%lld" : "%lld", (long long)t->shape[d]);
        fprintf(h, "],\"data_offsets\":[%llu,%llu]}%s", (unsigned long long)offset,
                (unsigned long long)(offset + bytes), i + 1 < count ? "," : "");
        offset += bytes;
    }
    fputc('}', h);
    while ((ftell(h) % 8) != 0) fputc(' ', h);   /* data aligned to 8 bytes, as the reference writer does */
    fclose(h);

    ts_atomic_file *fp = ts_atomic_open(path, 1);
    if (!fp) {
        free(header);
        return -1;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    ts_atomic_write(fp, len8, 8);
    ts_atomic_write(fp, header, hlen);
    free(header);
    int ok = 1;
    for (int i = 0; ok && i < count; i++) {
        ts_tensor *h = ts_host_copy(tensors[i]);   /* a CUDA tensor is written from a host copy */
        ts_tensor *c = h ? ts_tensor_contiguous(h) : NULL;
        ts_tensor_free(h);
        ok = c != NULL;
        if (ok) ts_atomic_write(fp, ts_tensor_data(c), (size_t)ts_tensor_numel(c) * (size_t)ts_dtype_size(c->dtype));
        ts_tensor_free(c);
    }
    return ts_atomic_close(fp, ok);
}
