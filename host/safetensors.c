/* safetensors: an 8-byte little-endian header length, a JSON header
 *   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ..., "__metadata__": {..}}
 * and the raw little-endian tensor bytes. Reading checks every offset against the file; writing goes to a
 * temporary file that replaces the target only once it is complete and synced. */
#include <errno.h>
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
    uint64_t begin, end;
} entry;

struct ts_safetensors {
    char *path;
    unsigned char *bytes;   /* the whole file */
    size_t size, data_start;
    entry *entries;
    int count;
    char *metadata;
};

/* file dtypes; F16 and BF16 are widened to float32 on load */
static const struct { const char *name; int size, ts; } dtypes[] = {
    {"F32", 4, TS_FLOAT32}, {"U8", 1, TS_UINT8}, {"I32", 4, TS_INT32}, {"I64", 8, TS_INT64},
    {"F64", 8, TS_FLOAT64}, {"F16", 2, TS_FLOAT32}, {"BF16", 2, TS_FLOAT32},
};
enum { N_DTYPES = sizeof dtypes / sizeof dtypes[0], DT_F16 = 5, DT_BF16 = 6 };

/* ---- a small JSON reader, enough for safetensors headers ---- */

typedef struct {
    const char *s, *end, *path;
    int failed;
} json;

static int jfail(json *j, const char *what)
{
    if (!j->failed) ts_error("%s: corrupt safetensors header: %s", j->path, what);
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
    if (j->s >= j->end || *j->s != c) {
        char msg[32];
        snprintf(msg, sizeof msg, "expected '%c'", c);
        return jfail(j, msg);
    }
    j->s++;
    return 0;
}

static char *jstring(json *j)
{
    if (expect(j, '"')) return NULL;
    char *out = malloc((size_t)(j->end - j->s) + 1), *o = out;
    if (!out) return (jfail(j, "out of memory"), NULL);
    while (j->s < j->end && *j->s != '"') {
        char c = *j->s++;
        if (c == '\\') {
            if (j->s >= j->end) break;
            c = *j->s++;
            switch (c) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'u': {
                unsigned v = 0;
                for (int i = 0; i < 4; i++) {
                    if (j->s >= j->end) break;
                    char h = *j->s++;
                    v = v * 16 + (unsigned)(h >= 'a' ? h - 'a' + 10 : h >= 'A' ? h - 'A' + 10 : h - '0');
                }
                if (v < 0x80) *o++ = (char)v;
                else if (v < 0x800) *o++ = (char)(0xC0 | v >> 6), *o++ = (char)(0x80 | (v & 0x3F));
                else *o++ = (char)(0xE0 | v >> 12), *o++ = (char)(0x80 | ((v >> 6) & 0x3F)), *o++ = (char)(0x80 | (v & 0x3F));
                continue;
            }
            default: break;   /* \" \\ \/ stand for themselves */
            }
        }
        *o++ = c;
    }
    *o = 0;
    if (j->s >= j->end) {
        free(out);
        return (jfail(j, "unterminated string"), NULL);
    }
    j->s++;
    return out;
}

static int jint(json *j, uint64_t *v)
{
    ws(j);
    if (j->s >= j->end || *j->s < '0' || *j->s > '9') return jfail(j, "expected a non-negative integer");
    uint64_t x = 0;
    while (j->s < j->end && *j->s >= '0' && *j->s <= '9') {
        if (x > (UINT64_MAX - 9) / 10) return jfail(j, "integer too large");
        x = x * 10 + (uint64_t)(*j->s++ - '0');
    }
    *v = x;
    return 0;
}

static int skip_value(json *j, int depth)
{
    ws(j);
    if (depth > 64) return jfail(j, "nested too deeply");
    if (j->s >= j->end) return jfail(j, "unexpected end");
    char c = *j->s;
    if (c == '"') {
        char *s = jstring(j);
        free(s);
        return s ? 0 : -1;
    }
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        j->s++;
        ws(j);
        if (j->s < j->end && *j->s == close) return j->s++, 0;
        for (;;) {
            if (c == '{') {
                char *k = jstring(j);
                if (!k) return -1;
                free(k);
                if (expect(j, ':')) return -1;
            }
            if (skip_value(j, depth + 1)) return -1;
            ws(j);
            if (j->s < j->end && *j->s == ',') { j->s++; continue; }
            return expect(j, close);
        }
    }
    while (j->s < j->end && (strchr("-+.eE", *j->s) || (*j->s >= '0' && *j->s <= '9') || (*j->s >= 'a' && *j->s <= 'z'))) j->s++;
    return 0;
}

static int parse_entry(json *j, entry *e)
{
    int seen = 0;
    if (expect(j, '{')) return -1;
    for (;;) {
        char *key = jstring(j);
        if (!key || expect(j, ':')) return free(key), -1;
        if (!strcmp(key, "dtype")) {
            char *d = jstring(j);
            if (!d) return free(key), -1;
            e->dtype = -1;
            for (int i = 0; i < N_DTYPES; i++)
                if (!strcmp(d, dtypes[i].name)) e->dtype = i;
            if (e->dtype < 0) {
                ts_error("%s: tensor '%s' has dtype %s, which tshost does not read", j->path, e->name, d);
                j->failed = 1;
                free(d);
                free(key);
                return -1;
            }
            free(d);
            seen |= 1;
        } else if (!strcmp(key, "shape")) {
            if (expect(j, '[')) return free(key), -1;
            ws(j);
            e->ndim = 0;
            if (j->s < j->end && *j->s == ']') j->s++;
            else
                for (;;) {
                    uint64_t v;
                    if (e->ndim == TS_MAX_DIMS) return free(key), jfail(j, "more than 5 dims");
                    if (jint(j, &v)) return free(key), -1;
                    e->shape[e->ndim++] = (int64_t)v;
                    ws(j);
                    if (j->s < j->end && *j->s == ',') { j->s++; continue; }
                    if (expect(j, ']')) return free(key), -1;
                    break;
                }
            seen |= 2;
        } else if (!strcmp(key, "data_offsets")) {
            if (expect(j, '[') || jint(j, &e->begin) || expect(j, ',') || jint(j, &e->end) || expect(j, ']'))
                return free(key), -1;
            seen |= 4;
        } else if (skip_value(j, 1)) {
            return free(key), -1;
        }
        free(key);
        ws(j);
        if (j->s < j->end && *j->s == ',') { j->s++; continue; }
        if (expect(j, '}')) return -1;
        break;
    }
    if (seen != 7) return jfail(j, "a tensor entry lacks dtype, shape or data_offsets");
    return 0;
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

static int read_whole(const char *path, unsigned char **bytes, size_t *size)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return ts_error("%s: cannot open: %s", path, strerror(errno));
    if (fseek(fp, 0, SEEK_END) || (*size = (size_t)ftell(fp), fseek(fp, 0, SEEK_SET))) {
        fclose(fp);
        return ts_error("%s: cannot read: %s", path, strerror(errno));
    }
    *bytes = malloc(*size ? *size : 1);
    if (!*bytes || fread(*bytes, 1, *size, fp) != *size) {
        fclose(fp);
        free(*bytes);
        return ts_error("%s: cannot read %zu bytes", path, *size);
    }
    fclose(fp);
    return 0;
}

ts_safetensors *ts_safetensors_open(const char *path)
{
    ts_safetensors *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        ts_error("out of memory");
        return NULL;
    }
    if (read_whole(path, &f->bytes, &f->size)) goto fail;
    if (f->size < 8) {
        ts_error("%s: not a safetensors file (%zu bytes, shorter than the 8-byte header length)", path, f->size);
        goto fail;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | f->bytes[i];
    if (hlen > f->size - 8) {
        ts_error("%s: truncated: the header claims %llu bytes but the file has %zu after the length", path,
                 (unsigned long long)hlen, f->size - 8);
        goto fail;
    }
    f->data_start = 8 + (size_t)hlen;
    json j = {(const char *)f->bytes + 8, (const char *)f->bytes + 8 + hlen, path, 0};
    int capacity = 16;
    f->entries = calloc((size_t)capacity, sizeof(entry));
    if (!f->entries || expect(&j, '{')) goto fail;
    ws(&j);
    if (j.s < j.end && *j.s == '}') j.s++;
    else
        for (;;) {
            char *key = jstring(&j);
            if (!key || expect(&j, ':')) {
                free(key);
                goto fail;
            }
            if (!strcmp(key, "__metadata__")) {
                const char *start = (ws(&j), j.s);
                free(key);
                if (skip_value(&j, 1)) goto fail;
                free(f->metadata);
                f->metadata = strndup(start, (size_t)(j.s - start));
            } else {
                if (f->count == capacity) {
                    entry *more = realloc(f->entries, sizeof(entry) * (size_t)(capacity *= 2));
                    if (!more) {
                        free(key);
                        ts_error("out of memory");
                        goto fail;
                    }
                    f->entries = more;
                }
                entry *e = &f->entries[f->count++];
                memset(e, 0, sizeof *e);
                e->name = key;
                for (int i = 0; i < f->count - 1; i++)
                    if (!strcmp(f->entries[i].name, key)) {
                        ts_error("%s: tensor '%s' appears twice", path, key);
                        goto fail;
                    }
                if (parse_entry(&j, e)) goto fail;
                uint64_t numel = 1;
                for (int d = 0; d < e->ndim; d++) numel *= (uint64_t)e->shape[d];
                if (e->end < e->begin || e->end - e->begin != numel * (uint64_t)dtypes[e->dtype].size) {
                    ts_error("%s: tensor '%s' has offsets %llu..%llu, which do not hold its %llu elements of %s", path,
                             key, (unsigned long long)e->begin, (unsigned long long)e->end,
                             (unsigned long long)numel, dtypes[e->dtype].name);
                    goto fail;
                }
                if (e->end > f->size - f->data_start) {
                    ts_error("%s: truncated: tensor '%s' ends at byte %llu of the data but the file holds %zu", path,
                             key, (unsigned long long)e->end, f->size - f->data_start);
                    goto fail;
                }
            }
            ws(&j);
            if (j.s < j.end && *j.s == ',') { j.s++; continue; }
            if (expect(&j, '}')) goto fail;
            break;
        }
    return f;
fail:
    ts_safetensors_close(f);
    return NULL;
}

int ts_safetensors_count(const ts_safetensors *f) { return f->count; }

const char *ts_safetensors_name(const ts_safetensors *f, int i)
{
    return i >= 0 && i < f->count ? f->entries[i].name : NULL;
}

const char *ts_safetensors_metadata(const ts_safetensors *f) { return f->metadata ? f->metadata : "{}"; }

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1F, man = h & 0x3FF, bits;
    if (exp == 0) {
        if (!man) bits = sign;
        else {   /* subnormal: renormalize */
            exp = 113;
            while (!(man & 0x400)) man <<= 1, exp--;
            bits = sign | exp << 23 | (man & 0x3FF) << 13;
        }
    } else if (exp == 31) {
        bits = sign | 0x7F800000u | man << 13;
    } else {
        bits = sign | (exp + 112) << 23 | man << 13;
    }
    float out;
    memcpy(&out, &bits, 4);
    return out;
}

ts_tensor *ts_safetensors_tensor(const ts_safetensors *f, int i)
{
    if (i < 0 || i >= f->count) {
        ts_error("%s: no tensor number %d", f->path, i + 1);
        return NULL;
    }
    const entry *e = &f->entries[i];
    const unsigned char *src = f->bytes + f->data_start + e->begin;
    if (e->dtype != DT_F16 && e->dtype != DT_BF16) return ts_tensor_from_buffer(dtypes[e->dtype].ts, e->ndim, e->shape, src);
    ts_tensor *t = ts_tensor_new(TS_FLOAT32, e->ndim, e->shape);
    if (!t) return NULL;
    float *out = ts_f32(t);
    for (int64_t k = 0; k < ts_tensor_numel(t); k++) {
        uint16_t h = (uint16_t)(src[2 * k] | src[2 * k + 1] << 8);
        if (e->dtype == DT_F16) out[k] = half_to_float(h);
        else {
            uint32_t bits = (uint32_t)h << 16;
            memcpy(&out[k], &bits, 4);
        }
    }
    return t;
}

/* ---- writing ---- */

static int json_escaped(FILE *fp, const char *s)
{
    fputc('"', fp);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(fp, "\\%c", c);
        else if (c < 0x20) fprintf(fp, "\\u%04x", c);
        else fputc(c, fp);
    }
    return fputc('"', fp) == EOF ? -1 : 0;
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
    if (metadata_json && *metadata_json) fprintf(h, "\"__metadata__\":%s,", metadata_json);
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

    size_t tlen = strlen(path) + 32;
    char *tmp = malloc(tlen);
    if (!tmp) {
        free(header);
        return ts_error("out of memory");
    }
    snprintf(tmp, tlen, "%s.tmp%ld", path, (long)getpid());
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        int rc = ts_error("%s: cannot create: %s", tmp, strerror(errno));
        free(header);
        free(tmp);
        return rc;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    int ok = fwrite(len8, 1, 8, fp) == 8 && fwrite(header, 1, hlen, fp) == hlen;
    for (int i = 0; ok && i < count; i++) {
        ts_tensor *h = ts_host_copy(tensors[i]);   /* a CUDA tensor is written from a host copy */
        ts_tensor *c = h ? ts_tensor_contiguous(h) : NULL;
        ts_tensor_free(h);
        ok = c != NULL;
        if (ok) {
            size_t bytes = (size_t)ts_tensor_numel(c) * (size_t)ts_dtype_size(c->dtype);
            ok = fwrite(ts_tensor_data(c), 1, bytes, fp) == bytes;
        }
        ts_tensor_free(c);
    }
    ok = ok && fflush(fp) == 0 && fsync(fileno(fp)) == 0;
    ok = fclose(fp) == 0 && ok;
    free(header);
    if (!ok || rename(tmp, path)) {
        int rc = ts_error("%s: write failed: %s (the previous file, if any, is untouched)", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return rc;
    }
    free(tmp);
    return 0;
}
