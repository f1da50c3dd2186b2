/* A pickle reader for datasets stored as a dict of numpy arrays (protocols 2 to 5, numpy 1.x and 2.x).
 *
 * It runs the pickle machine's opcodes over a value stack, but never calls anything: the only globals
 * it accepts are the ones that rebuild arrays (numpy's _reconstruct, ndarray, dtype, _frombuffer, and
 * _codecs.encode, which protocol 2 uses for bytes), each interpreted here by hand. Any other global is
 * refused by name. Every read is checked against the end of the file, so a truncated or corrupt file is
 * an error naming the byte offset, never a crash. Values live in an arena freed at the end. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef enum { V_NONE, V_BOOL, V_INT, V_FLOAT, V_STR, V_BYTES, V_TUPLE, V_LIST, V_DICT, V_GLOBAL, V_ARRAY, V_DTYPE, V_MARK } vkind;
typedef enum { G_RECONSTRUCT, G_NDARRAY, G_DTYPE, G_FROMBUFFER, G_ENCODE } gkind;

typedef struct value value;
struct value {
    vkind kind;
    int64_t i;              /* int, bool, global kind */
    double f;
    const unsigned char *s; /* str/bytes: points into the file or the arena */
    int64_t len;
    value **items;          /* tuple/list items; dict: keys and values interleaved */
    int64_t n, cap;
    /* arrays and dtypes */
    int dtype, ndim, fortran;
    char byteorder;
    int64_t shape[TS_MAX_DIMS];
    value *descr;           /* array: its dtype value */
    value *data;            /* array: its bytes value */
};

struct ts_pickle {
    int count;
    char **keys;
    ts_tensor **tensors;
};

typedef struct {
    const char *path;
    const unsigned char *buf;
    size_t size, pos, op_at;
    value **stack;
    int64_t sp, stack_cap;
    value **memo;
    int64_t memo_cap, memo_len;   /* memo_len: entries set, the index MEMOIZE uses next */
    void **arena;
    int64_t arena_n, arena_cap;
} machine;

static int fail(machine *m, const char *fmt, const char *detail)
{
    char msg[512];
    snprintf(msg, sizeof msg, fmt, detail);
    return ts_error("%s: %s (at byte %zu)", m->path, msg, m->op_at);
}

static void *arena_alloc(machine *m, size_t bytes)
{
    if (m->arena_n == m->arena_cap) {
        int64_t cap = m->arena_cap ? m->arena_cap * 2 : 1024;
        void **more = realloc(m->arena, sizeof(void *) * (size_t)cap);
        if (!more) return NULL;
        m->arena = more;
        m->arena_cap = cap;
    }
    void *p = calloc(1, bytes ? bytes : 1);
    if (p) m->arena[m->arena_n++] = p;
    return p;
}

static value *new_value(machine *m, vkind kind)
{
    value *v = arena_alloc(m, sizeof(value));
    if (v) v->kind = kind;
    return v;
}

static int push(machine *m, value *v)
{
    if (!v) return ts_error("%s: out of memory", m->path);
    if (m->sp == m->stack_cap) {
        int64_t cap = m->stack_cap ? m->stack_cap * 2 : 64;
        value **more = realloc(m->stack, sizeof(value *) * (size_t)cap);
        if (!more) return ts_error("%s: out of memory", m->path);
        m->stack = more;
        m->stack_cap = cap;
    }
    m->stack[m->sp++] = v;
    return 0;
}

static value *pop(machine *m)
{
    if (m->sp == 0) {
        fail(m, "corrupt pickle: %s", "stack underflow");
        return NULL;
    }
    return m->stack[--m->sp];
}

static int append_item(machine *m, value *container, value *item)
{
    if (container->n == container->cap) {
        int64_t cap = container->cap ? container->cap * 2 : 8;
        value **more = arena_alloc(m, sizeof(value *) * (size_t)cap);
        if (!more) return ts_error("%s: out of memory", m->path);
        if (container->n) memcpy(more, container->items, sizeof(value *) * (size_t)container->n);
        container->items = more;
        container->cap = cap;
    }
    container->items[container->n++] = item;
    return 0;
}

/* position of the topmost MARK, or -1 */
static int64_t find_mark(machine *m)
{
    for (int64_t i = m->sp - 1; i >= 0; i--)
        if (m->stack[i]->kind == V_MARK) return i;
    fail(m, "corrupt pickle: %s", "no MARK on the stack");
    return -1;
}

static int need(machine *m, size_t n)
{
    if (n > m->size - m->pos) {
        char what[96];
        snprintf(what, sizeof what, "%zu more bytes needed, %zu left", n, m->size - m->pos);
        return fail(m, "truncated file: %s", what);
    }
    return 0;
}

static uint64_t read_le(machine *m, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | m->buf[m->pos + (size_t)i];
    m->pos += (size_t)n;
    return v;
}

static int memo_put(machine *m, int64_t index, value *v)
{
    if (index < 0 || index > 1 << 24) return fail(m, "corrupt pickle: %s", "memo index out of range");
    if (index >= m->memo_cap) {
        int64_t cap = m->memo_cap ? m->memo_cap : 64;
        while (cap <= index) cap *= 2;
        value **more = realloc(m->memo, sizeof(value *) * (size_t)cap);
        if (!more) return ts_error("%s: out of memory", m->path);
        memset(more + m->memo_cap, 0, sizeof(value *) * (size_t)(cap - m->memo_cap));
        m->memo = more;
        m->memo_cap = cap;
    }
    if (!m->memo[index]) m->memo_len++;
    m->memo[index] = v;
    return 0;
}

static int str_is(const value *v, const char *s)
{
    return v && (v->kind == V_STR || v->kind == V_BYTES) && v->len == (int64_t)strlen(s) && !memcmp(v->s, s, (size_t)v->len);
}

/* The few globals that rebuild arrays; anything else is refused by name. */
static int global(machine *m, const char *module, size_t mlen, const char *name, size_t nlen)
{
    static const struct { const char *module, *name; gkind kind; } allowed[] = {
        {"numpy.core.multiarray", "_reconstruct", G_RECONSTRUCT}, {"numpy._core.multiarray", "_reconstruct", G_RECONSTRUCT},
        {"numpy", "ndarray", G_NDARRAY}, {"numpy", "dtype", G_DTYPE},
        {"numpy.core.numeric", "_frombuffer", G_FROMBUFFER}, {"numpy._core.numeric", "_frombuffer", G_FROMBUFFER},
        {"_codecs", "encode", G_ENCODE},
    };
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        if (strlen(allowed[i].module) == mlen && !memcmp(allowed[i].module, module, mlen) &&
            strlen(allowed[i].name) == nlen && !memcmp(allowed[i].name, name, nlen)) {
            value *g = new_value(m, V_GLOBAL);
            if (g) g->i = allowed[i].kind;
            return push(m, g);
        }
    char what[300];
    snprintf(what, sizeof what, "%.*s.%.*s", (int)(mlen > 120 ? 120 : mlen), module, (int)(nlen > 120 ? 120 : nlen), name);
    return fail(m, "refusing to load global %s: only numpy array reconstruction is allowed (tshost never executes pickled code)", what);
}

static int parse_descr(machine *m, value *d, const value *descr)
{
    static const struct { const char *code; int dtype; } codes[] = {
        {"u1", TS_UINT8}, {"i4", TS_INT32}, {"i8", TS_INT64}, {"f4", TS_FLOAT32}, {"f8", TS_FLOAT64},
    };
    if (!descr || descr->kind != V_STR) return fail(m, "corrupt pickle: %s", "dtype without a type code");
    const unsigned char *s = descr->s;
    int64_t len = descr->len;
    d->byteorder = '=';
    if (len == 3 && (s[0] == '<' || s[0] == '>' || s[0] == '|' || s[0] == '=')) {
        d->byteorder = (char)s[0];
        s++, len--;
    }
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (len == 2 && !memcmp(s, codes[i].code, 2)) {
            d->dtype = codes[i].dtype;
            return 0;
        }
    char what[64];
    snprintf(what, sizeof what, "%.*s", (int)(descr->len > 40 ? 40 : descr->len), descr->s);
    return fail(m, "unsupported numpy dtype '%s' (uint8, int32, int64, float32 and float64 are read)", what);
}

static int shape_from(machine *m, value *arr, const value *shape)
{
    if (!shape || shape->kind != V_TUPLE) return fail(m, "corrupt pickle: %s", "array shape is not a tuple");
    if (shape->n > TS_MAX_DIMS) return fail(m, "array has more than %s dims", "5");
    arr->ndim = (int)shape->n;
    for (int64_t d = 0; d < shape->n; d++) {
        if (shape->items[d]->kind != V_INT || shape->items[d]->i < 0)
            return fail(m, "corrupt pickle: %s", "array shape holds a non-integer");
        arr->shape[d] = shape->items[d]->i;
    }
    return 0;
}

/* REDUCE: callable(*args) for the allowed callables */
static int reduce(machine *m)
{
    value *args = pop(m), *callable = pop(m);
    if (!args || !callable) return -1;
    if (callable->kind != V_GLOBAL || args->kind != V_TUPLE) return fail(m, "corrupt pickle: %s", "REDUCE of a non-global");
    value *out = NULL;
    switch ((gkind)callable->i) {
    case G_RECONSTRUCT:   /* _reconstruct(ndarray, (0,), b'b'): an empty array, filled by BUILD */
        out = new_value(m, V_ARRAY);
        break;
    case G_DTYPE:         /* dtype('u1', False, True); byte order set by BUILD */
        out = new_value(m, V_DTYPE);
        if (out && (args->n < 1 || parse_descr(m, out, args->items[0]))) return args->n < 1 ? fail(m, "corrupt pickle: %s", "dtype()") : -1;
        break;
    case G_FROMBUFFER:    /* _frombuffer(buffer, dtype, shape, order) */
        if (args->n != 4 || args->items[0]->kind != V_BYTES || args->items[1]->kind != V_DTYPE)
            return fail(m, "corrupt pickle: %s", "_frombuffer arguments");
        out = new_value(m, V_ARRAY);
        if (!out) break;
        out->data = args->items[0];
        out->descr = args->items[1];
        out->fortran = str_is(args->items[3], "F");
        if (shape_from(m, out, args->items[2])) return -1;
        break;
    case G_ENCODE:        /* _codecs.encode(text, 'latin1'): protocol 2's bytes; text is UTF-8 of code points < 256 */
        if (args->n != 2 || args->items[0]->kind != V_STR || !str_is(args->items[1], "latin1"))
            return fail(m, "corrupt pickle: %s", "_codecs.encode arguments");
        out = new_value(m, V_BYTES);
        if (!out) break;
        {
            const value *t = args->items[0];
            unsigned char *b = arena_alloc(m, (size_t)t->len);
            if (!b) break;
            int64_t n = 0;
            for (int64_t i = 0; i < t->len; i++) {
                unsigned char c = t->s[i];
                if (c < 0x80) b[n++] = c;
                else if ((c & 0xE0) == 0xC0 && i + 1 < t->len) b[n++] = (unsigned char)(((c & 0x1F) << 6) | (t->s[++i] & 0x3F));
                else return fail(m, "corrupt pickle: %s", "latin1 text with a code point above 255");
            }
            out->s = b;
            out->len = n;
        }
        break;
    default:
        return fail(m, "corrupt pickle: %s", "ndarray called directly");
    }
    return push(m, out);
}

/* BUILD: obj.__setstate__(state) for arrays and dtypes */
static int build(machine *m)
{
    value *state = pop(m), *obj = pop(m);
    if (!state || !obj) return -1;
    if (obj->kind == V_DTYPE) {
        /* (version, byteorder, subarray, names, fields, elsize, alignment, flags) */
        if (state->kind == V_TUPLE && state->n >= 2 && state->items[1]->kind == V_STR && state->items[1]->len == 1)
            obj->byteorder = (char)state->items[1]->s[0];
        return push(m, obj);
    }
    if (obj->kind != V_ARRAY) return fail(m, "corrupt pickle: %s", "BUILD on an object that is not an array");
    /* (version, shape, dtype, is_fortran, data) */
    if (state->kind != V_TUPLE || state->n != 5 || state->items[2]->kind != V_DTYPE)
        return fail(m, "corrupt pickle: %s", "array state");
    if (shape_from(m, obj, state->items[1])) return -1;
    obj->descr = state->items[2];
    obj->fortran = state->items[3]->kind == V_BOOL ? (int)state->items[3]->i : 0;
    if (state->items[4]->kind != V_BYTES)
        return fail(m, "array data is not raw bytes (an object array?): %s", "only numeric arrays are read");
    obj->data = state->items[4];
    return push(m, obj);
}

static int read_str(machine *m, vkind kind, size_t len)
{
    if (need(m, len)) return -1;
    value *v = new_value(m, kind);
    if (!v) return push(m, v);
    v->s = m->buf + m->pos;
    v->len = (int64_t)len;
    m->pos += len;
    return push(m, v);
}

static int run(machine *m, value **result)
{
    for (;;) {
        m->op_at = m->pos;
        if (need(m, 1)) return -1;
        unsigned char op = m->buf[m->pos++];
        value *v, *a, *b;
        int64_t mark;
        switch (op) {
        case 0x80: if (need(m, 1)) return -1; if (m->buf[m->pos] > 5) return fail(m, "pickle protocol %s is newer than 5", "> 5"); m->pos++; break;
        case 0x95: if (need(m, 8)) return -1; m->pos += 8; break;                     /* FRAME: length only */
        case '.': *result = pop(m); return *result ? 0 : -1;                           /* STOP */
        case '(': if (push(m, new_value(m, V_MARK))) return -1; break;
        case '}': if (push(m, new_value(m, V_DICT))) return -1; break;
        case ']': if (push(m, new_value(m, V_LIST))) return -1; break;
        case ')': if (push(m, new_value(m, V_TUPLE))) return -1; break;
        case 'N': if (push(m, new_value(m, V_NONE))) return -1; break;
        case 0x88: case 0x89:
            v = new_value(m, V_BOOL);
            if (v) v->i = op == 0x88;
            if (push(m, v)) return -1;
            break;
        case 'K': case 'M': case 'J': {
            int n = op == 'K' ? 1 : op == 'M' ? 2 : 4;
            if (need(m, (size_t)n)) return -1;
            uint64_t raw = read_le(m, n);
            v = new_value(m, V_INT);
            if (v) v->i = op == 'J' ? (int64_t)(int32_t)raw : (int64_t)raw;
            if (push(m, v)) return -1;
            break;
        }
        case 0x8a: {                                                                   /* LONG1 */
            if (need(m, 1)) return -1;
            int n = m->buf[m->pos++];
            if (n > 8 || need(m, (size_t)n)) return n > 8 ? fail(m, "integer of %s bytes is too large", "> 8") : -1;
            uint64_t raw = read_le(m, n);
            if (n > 0 && n < 8 && (raw >> (8 * n - 1)) & 1) raw |= ~0ull << (8 * n);   /* sign-extend */
            v = new_value(m, V_INT);
            if (v) v->i = (int64_t)raw;
            if (push(m, v)) return -1;
            break;
        }
        case 'G': {
            if (need(m, 8)) return -1;
            uint64_t raw = 0;
            for (int i = 0; i < 8; i++) raw = raw << 8 | m->buf[m->pos + (size_t)i];   /* big-endian */
            m->pos += 8;
            v = new_value(m, V_FLOAT);
            if (v) memcpy(&v->f, &raw, 8);
            if (push(m, v)) return -1;
            break;
        }
        case 'X': case 0x8c: case 0x8d: case 'B': case 'C': case 0x8e: case 0x96: case 'T': case 'U': {
            int n = (op == 0x8c || op == 'C' || op == 'U') ? 1 : (op == 0x8d || op == 0x8e || op == 0x96) ? 8 : 4;
            if (need(m, (size_t)n)) return -1;
            uint64_t len = read_le(m, n);
            if (len > m->size) return fail(m, "truncated file: %s", "a string is longer than the file");
            if (read_str(m, (op == 'X' || op == 0x8c || op == 0x8d) ? V_STR : V_BYTES, (size_t)len)) return -1;
            break;
        }
        case 0x97: return fail(m, "%s", "out-of-band buffers (pickle protocol 5 NEXT_BUFFER) are not supported");
        case 0x98: break;                                                              /* READONLY_BUFFER */
        case 'q': case 'r': case 0x94: {
            int64_t index = m->memo_len;   /* MEMOIZE: the memo's length */
            if (op != 0x94) {
                int n = op == 'q' ? 1 : 4;
                if (need(m, (size_t)n)) return -1;
                index = (int64_t)read_le(m, n);
            }
            if (m->sp == 0) return fail(m, "corrupt pickle: %s", "memoizing an empty stack");
            if (memo_put(m, index, m->stack[m->sp - 1])) return -1;
            break;
        }
        case 'h': case 'j': {
            int n = op == 'h' ? 1 : 4;
            if (need(m, (size_t)n)) return -1;
            int64_t index = (int64_t)read_le(m, n);
            if (index >= m->memo_cap || !m->memo[index]) return fail(m, "corrupt pickle: %s", "memo entry missing");
            if (push(m, m->memo[index])) return -1;
            break;
        }
        case 0x85: case 0x86: case 0x87: {
            int n = op - 0x84;
            if (m->sp < n) return fail(m, "corrupt pickle: %s", "stack underflow");
            v = new_value(m, V_TUPLE);
            if (!v) return push(m, v);
            for (int i = 0; i < n; i++)
                if (append_item(m, v, m->stack[m->sp - n + i])) return -1;
            m->sp -= n;
            if (push(m, v)) return -1;
            break;
        }
        case 't': case 'e': case 'u': case '1': {
            if ((mark = find_mark(m)) < 0) return -1;
            if (op == '1') { m->sp = mark; break; }                                     /* POP_MARK */
            if (op == 't') {
                v = new_value(m, V_TUPLE);
                if (!v) return push(m, v);
            } else {
                if (mark == 0) return fail(m, "corrupt pickle: %s", "nothing to append to");
                v = m->stack[mark - 1];
                if (op == 'e' && v->kind != V_LIST) return fail(m, "corrupt pickle: %s", "APPENDS to a non-list");
                if (op == 'u' && v->kind != V_DICT) return fail(m, "corrupt pickle: %s", "SETITEMS on a non-dict");
                if (op == 'u' && (m->sp - mark - 1) % 2) return fail(m, "corrupt pickle: %s", "odd number of dict items");
            }
            for (int64_t i = mark + 1; i < m->sp; i++)
                if (append_item(m, v, m->stack[i])) return -1;
            m->sp = mark;
            if (op == 't' && push(m, v)) return -1;
            break;
        }
        case 'a': case 's': {
            int n = op == 'a' ? 1 : 2;
            if (m->sp < n + 1) return fail(m, "corrupt pickle: %s", "stack underflow");
            v = m->stack[m->sp - n - 1];
            if (v->kind != (op == 'a' ? V_LIST : V_DICT)) return fail(m, "corrupt pickle: %s", "APPEND/SETITEM target");
            for (int i = n; i >= 1; i--)
                if (append_item(m, v, m->stack[m->sp - i])) return -1;
            m->sp -= n;
            break;
        }
        case '0': if (!pop(m)) return -1; break;
        case '2': if (m->sp == 0) return fail(m, "corrupt pickle: %s", "DUP of an empty stack"); if (push(m, m->stack[m->sp - 1])) return -1; break;
        case 'c': {                                                                    /* GLOBAL module\nname\n */
            const char *start = (const char *)m->buf + m->pos;
            const char *nl1 = memchr(start, '\n', m->size - m->pos);
            if (!nl1) return fail(m, "truncated file: %s", "GLOBAL without its module line");
            const char *nl2 = memchr(nl1 + 1, '\n', m->size - m->pos - (size_t)(nl1 + 1 - start));
            if (!nl2) return fail(m, "truncated file: %s", "GLOBAL without its name line");
            m->pos += (size_t)(nl2 + 1 - start);
            if (global(m, start, (size_t)(nl1 - start), nl1 + 1, (size_t)(nl2 - nl1 - 1))) return -1;
            break;
        }
        case 0x93:                                                                     /* STACK_GLOBAL */
            b = pop(m), a = pop(m);
            if (!a || !b) return -1;
            if (a->kind != V_STR || b->kind != V_STR) return fail(m, "corrupt pickle: %s", "STACK_GLOBAL of non-strings");
            if (global(m, (const char *)a->s, (size_t)a->len, (const char *)b->s, (size_t)b->len)) return -1;
            break;
        case 'R': if (reduce(m)) return -1; break;
        case 'b': if (build(m)) return -1; break;
        default: {
            char what[16];
            snprintf(what, sizeof what, "0x%02x", op);
            return fail(m, "unsupported or corrupt pickle opcode %s", what);
        }
        }
    }
}

static void machine_free(machine *m)
{
    for (int64_t i = 0; i < m->arena_n; i++) free(m->arena[i]);
    free(m->arena);
    free(m->stack);
    free(m->memo);
}

void ts_pickle_free(ts_pickle *p)
{
    if (!p) return;
    for (int i = 0; i < p->count; i++) {
        free(p->keys[i]);
        ts_tensor_free(p->tensors[i]);
    }
    free(p->keys);
    free(p->tensors);
    free(p);
}

static ts_tensor *array_to_tensor(machine *m, const value *a, const char *key)
{
    char what[200];
    snprintf(what, sizeof what, "'%.150s'", key);
    if (!a->descr || !a->data) {
        fail(m, "array %s was never filled in", what);
        return NULL;
    }
    if (a->descr->byteorder == '>') {
        fail(m, "array %s is big-endian, which tshost does not read", what);
        return NULL;
    }
    if (a->fortran && a->ndim > 1) {
        fail(m, "array %s is in Fortran order; save it with numpy.ascontiguousarray", what);
        return NULL;
    }
    int64_t numel = 1;
    for (int d = 0; d < a->ndim; d++) numel *= a->shape[d];
    int64_t bytes = numel * ts_dtype_size(a->descr->dtype);
    if (a->data->len != bytes) {
        snprintf(what, sizeof what, "'%.100s' holds %lld bytes where its shape needs %lld", key, (long long)a->data->len,
                 (long long)bytes);
        fail(m, "array %s", what);
        return NULL;
    }
    return ts_tensor_from_buffer(a->descr->dtype, a->ndim, a->shape, a->data->s);
}

ts_pickle *ts_pickle_load(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        ts_error("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *buf = malloc(size > 0 ? (size_t)size : 1);
    if (!buf || size < 0 || fread(buf, 1, (size_t)size, fp) != (size_t)size) {
        fclose(fp);
        free(buf);
        ts_error("%s: cannot read the file", path);
        return NULL;
    }
    fclose(fp);
    machine m = {.path = path, .buf = buf, .size = (size_t)size};
    value *top = NULL;
    ts_pickle *out = NULL;
    if (run(&m, &top)) goto done;
    m.op_at = m.pos;
    if (top->kind != V_DICT) {
        fail(&m, "the pickle holds %s, not a dict of arrays", top->kind == V_ARRAY ? "a bare array" : "another object");
        goto done;
    }
    out = calloc(1, sizeof *out);
    int64_t pairs = top->n / 2;
    if (!out || !(out->keys = calloc((size_t)pairs + 1, sizeof(char *))) ||
        !(out->tensors = calloc((size_t)pairs + 1, sizeof(ts_tensor *)))) {
        ts_error("out of memory");
        ts_pickle_free(out);
        out = NULL;
        goto done;
    }
    for (int64_t i = 0; i < pairs; i++) {
        value *k = top->items[2 * i], *v = top->items[2 * i + 1];
        if (v->kind != V_ARRAY || (k->kind != V_STR && k->kind != V_BYTES)) continue;   /* other entries are skipped */
        char *key = strndup((const char *)k->s, (size_t)k->len);
        ts_tensor *t = key ? array_to_tensor(&m, v, key) : NULL;
        if (!t) {
            free(key);
            ts_pickle_free(out);
            out = NULL;
            goto done;
        }
        out->keys[out->count] = key;
        out->tensors[out->count++] = t;
    }
done:
    machine_free(&m);
    free(buf);
    return out;
}

int ts_pickle_count(const ts_pickle *p) { return p->count; }
const char *ts_pickle_key(const ts_pickle *p, int i) { return i >= 0 && i < p->count ? p->keys[i] : NULL; }
ts_tensor *ts_pickle_tensor(const ts_pickle *p, int i)
{
    return i >= 0 && i < p->count ? ts_tensor_retain(p->tensors[i]) : NULL;
}
