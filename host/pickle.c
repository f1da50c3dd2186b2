/* A pickle reader for datasets stored as a dict of numpy arrays (protocols 2 to 5, numpy 1.x and 2.x).
 *
 * It runs the pickle machine's opcodes over a value stack, but never calls anything: the only globals
 * it accepts are the ones that rebuild arrays (numpy's _reconstruct, ndarray, dtype, _frombuffer, and
 * _codecs.encode, which protocol 2 uses for bytes), each interpreted here by hand. Any other global is
 * refused by name. Every read is checked against the end of its frame and of the file, so a truncated or
 * corrupt file is an error naming the byte offset, never a crash or silently shifted data.
 *
 * A hostile file cannot make it use much more memory than the file's size: the stack and the memo hold at
 * most one entry per byte of the file, values come from an arena whose budget grows with the file's size,
 * and the commonest values (None, True, False, MARK, the empty tuple) are shared, not allocated.
 *
 * Arrays of every numeric numpy dtype are read, as the nearest tshost dtype that holds their values (bool ->
 * uint8, int8/int16/uint16 -> int32, uint32/uint64 -> int64, float16 -> float32), big-endian ones
 * byte-swapped. Entries that are not such arrays (strings, objects, complex numbers, dates, plain Python
 * values) are skipped, each with its reason, for the caller to report. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* '<' and '=' arrays are copied as they are; '>' ones are swapped */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the pickle reader assumes a little-endian host");

typedef enum { V_NONE, V_BOOL, V_INT, V_FLOAT, V_STR, V_BYTES, V_TUPLE, V_LIST, V_DICT, V_GLOBAL, V_ARRAY, V_DTYPE, V_MARK } vkind;
typedef enum { G_RECONSTRUCT, G_NDARRAY, G_DTYPE, G_FROMBUFFER, G_ENCODE, G_SCALAR } gkind;

typedef struct value value;

/* an array as its pickle describes it; checked only when converted, where its key is known */
typedef struct {
    const value *shape;     /* a tuple of ints */
    const value *dtype;     /* a V_DTYPE */
    const value *data;      /* V_BYTES for numeric arrays (object arrays hold a list) */
    int fortran;
    const value *axes;      /* numpy 2's protocol 5 order 'K': the data hold transpose(axes) of the array, in C
                               order, with shape `shape`; NULL otherwise */
} pickled_array;

struct value {
    unsigned char kind;     /* a vkind */
    char order;             /* dtype: byte order '<', '>', '|' or '=' */
    int64_t n;              /* str/bytes/dtype: length of s; tuple/list/dict: items (a dict's keys and values interleaved) */
    union {
        int64_t i;                  /* int, bool; a global's gkind */
        double f;
        const unsigned char *s;     /* str/bytes, a dtype's type code ('u1', 'f8'): into the file or the arena */
        value **items;
        pickled_array *arr;
    };
};

struct ts_pickle {
    int count, skipped_count;
    char **keys;
    ts_tensor **tensors;
    char **skipped;         /* "key: why it was not read" */
};

/* the arena: values and item arrays are bumped out of 64 KiB blocks, freed all at once */
enum { ARENA_BLOCK = 64 * 1024 };
typedef struct arena_block {
    struct arena_block *next;
    size_t used, size;
    _Alignas(8) unsigned char data[];
} arena_block;

/* Python's framer (protocol 4+) cuts frames at 64 KiB, leaves strings longer than that outside any frame,
 * and writes a frame shorter than 4 bytes without its header */
enum { FRAME_TARGET = 64 * 1024, FRAME_MIN = 4 };
#define NO_LOOSE_RUN SIZE_MAX

typedef struct {
    const char *path;
    const unsigned char *buf;
    size_t size, pos, op_at;
    size_t end;             /* reads stop here: the current frame's end, else the file's */
    int in_frame, framed;   /* inside a frame now; a FRAME has been seen */
    size_t frame_len;       /* the current (or last) frame's length */
    size_t loose_from;      /* where a run of unframed opcodes Python may write began, or NO_LOOSE_RUN */
    value **stack;
    int64_t sp, stack_cap;
    value **memo;
    int64_t memo_cap, memo_len;   /* memo_len: entries set, the index MEMOIZE uses next */
    arena_block *blocks;
    size_t spent, budget;   /* arena bytes handed out, and the most a file of this size may ask for */
    value none, mark, yes, no, empty_tuple;
} machine;

static int is_order(unsigned char c) { return c && strchr("<>|=", c); }   /* a numpy byte-order character */

__attribute__((format(printf, 2, 3))) static int fail(machine *m, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ts_error("%s: %s (at byte %zu)", m->path, msg, m->op_at);
}

/* NULL, with the error set, when out of memory or over the budget */
static void *arena_alloc(machine *m, size_t bytes)
{
    bytes = (bytes + 7) & ~(size_t)7;   /* everything here needs at most 8-byte alignment */
    if (bytes > m->budget - m->spent) {
        fail(m, "corrupt pickle: it builds more than %zu MB of values from a file of %zu bytes", m->budget >> 20, m->size);
        return NULL;
    }
    m->spent += bytes;
    arena_block *b = m->blocks;
    if (!b || b->size - b->used < bytes) {
        size_t size = bytes > ARENA_BLOCK / 4 ? bytes : ARENA_BLOCK;
        b = malloc(sizeof *b + size);
        if (!b) {
            ts_error("%s: out of memory", m->path);
            return NULL;
        }
        b->used = 0;
        b->size = size;
        if (size > ARENA_BLOCK && m->blocks) {   /* a big one goes behind the block being filled */
            b->next = m->blocks->next;
            m->blocks->next = b;
        } else {
            b->next = m->blocks;
            m->blocks = b;
        }
    }
    void *p = b->data + b->used;
    b->used += bytes;
    return p;
}

static value *new_value(machine *m, vkind kind)
{
    value *v = arena_alloc(m, sizeof(value));
    if (v) *v = (value){.kind = (unsigned char)kind};
    return v;
}

/* Every push reads at least one byte of the file, so no valid pickle needs more stack entries than it has bytes. */
static int push(machine *m, value *v)
{
    if (!v) return -1;   /* the allocation said why */
    if (m->sp == m->stack_cap) {
        int64_t cap = m->stack_cap ? m->stack_cap * 2 : 64;
        if (cap > (int64_t)m->size) cap = (int64_t)m->size;
        if (cap <= m->sp) return fail(m, "corrupt pickle: %s", "the stack grows past one entry per byte of the file");
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

/* a list's or dict's items grow in powers of two (at least 8), so the capacity follows from the count */
static int append_item(machine *m, value *container, value *item)
{
    int64_t n = container->n;
    if (n == 0 || (n >= 8 && (n & (n - 1)) == 0)) {
        value **more = arena_alloc(m, sizeof(value *) * (size_t)(n ? 2 * n : 8));
        if (!more) return -1;
        if (n) memcpy(more, container->items, sizeof(value *) * (size_t)n);
        container->items = more;
    }
    container->items[container->n++] = item;
    return 0;
}

/* a new tuple of the stack entries from position `from` up, which it replaces */
static int make_tuple(machine *m, int64_t from)
{
    int64_t n = m->sp - from;
    value *t = new_value(m, V_TUPLE);
    if (!t || (n && !(t->items = arena_alloc(m, sizeof(value *) * (size_t)n)))) return -1;
    if (n) memcpy(t->items, m->stack + from, sizeof(value *) * (size_t)n);
    t->n = n;
    m->sp = from;
    return push(m, t);
}

/* position of the topmost MARK, or -1 */
static int64_t find_mark(machine *m)
{
    for (int64_t i = m->sp - 1; i >= 0; i--)
        if (m->stack[i]->kind == V_MARK) return i;
    fail(m, "corrupt pickle: %s", "no MARK on the stack");
    return -1;
}

/* n more bytes of the current frame (or of the file, outside frames) */
static int need(machine *m, size_t n)
{
    if (n <= m->end - m->pos) return 0;
    if (m->in_frame && n <= m->size - m->pos)
        return fail(m, "corrupt pickle: an opcode runs past the end of its frame at byte %zu (a byte lost or added?)", m->end);
    return fail(m, "truncated file: %zu more bytes needed, %zu left", n, m->size - m->pos);
}

static uint64_t read_le(machine *m, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | m->buf[m->pos + (size_t)i];
    m->pos += (size_t)n;
    return v;
}

/* ---- framing (protocol 4+) ---------------------------------------------------------------------------- */

/* before each opcode: a frame read to its end is left */
static void frame_step(machine *m)
{
    if (m->in_frame && m->pos == m->end) {
        m->in_frame = 0;
        m->end = m->size;
        m->loose_from = m->frame_len >= FRAME_TARGET ? m->pos : NO_LOOSE_RUN;
    }
}

/* FRAME: the next len bytes hold whole opcodes */
static int frame_begin(machine *m)
{
    if (m->in_frame) return fail(m, "corrupt pickle: a FRAME begins %zu bytes before the previous frame ends", m->end - m->op_at);
    if (need(m, 8)) return -1;
    uint64_t len = read_le(m, 8);
    if (len > m->size - m->pos)
        return fail(m, "corrupt pickle: a frame of %llu bytes runs past the end of the file (%zu bytes left)", (unsigned long long)len,
                    m->size - m->pos);
    m->in_frame = m->framed = 1;
    m->frame_len = (size_t)len;
    m->end = m->pos + (size_t)len;
    return 0;
}

/* After an opcode that began outside any frame in a file that uses frames. Python's writers leave outside
 * frames only strings of more than 64 KiB, and runs of fewer than 4 bytes (a frame too short for its header)
 * after such a string or after a full 64 KiB frame; anything else there means a byte was lost or added. */
static int frame_check_loose(machine *m)
{
    if (m->pos - m->op_at > FRAME_TARGET) {
        m->loose_from = m->pos;
        return 0;
    }
    if (m->loose_from != NO_LOOSE_RUN && m->pos - m->loose_from < FRAME_MIN) return 0;
    return fail(m, "corrupt pickle: %s", "an opcode outside the file's frames (a byte lost or added?)");
}

/* ---- memo ------------------------------------------------------------------------------------------- */

/* A pickler numbers its memo entries from 0, one per PUT opcode, so an index beyond the file's size is corrupt. */
static int memo_put(machine *m, int64_t index, value *v)
{
    if (index < 0 || (uint64_t)index >= m->size)
        return fail(m, "corrupt pickle: memo index %lld is beyond what a file of %zu bytes can hold", (long long)index, m->size);
    if (index >= m->memo_cap) {
        int64_t cap = m->memo_cap ? m->memo_cap : 64;
        while (cap <= index) cap *= 2;
        if (cap > (int64_t)m->size) cap = (int64_t)m->size;
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

/* PUT, LONG_BINPUT, MEMOIZE */
static int memo_set(machine *m, unsigned char op)
{
    int64_t index = m->memo_len;   /* MEMOIZE: the memo's length */
    if (op != 0x94) {
        int n = op == 'q' ? 1 : 4;
        if (need(m, (size_t)n)) return -1;
        index = (int64_t)read_le(m, n);
    }
    if (m->sp == 0) return fail(m, "corrupt pickle: %s", "memoizing an empty stack");
    return memo_put(m, index, m->stack[m->sp - 1]);
}

/* BINGET, LONG_BINGET */
static int memo_get(machine *m, unsigned char op)
{
    int n = op == 'h' ? 1 : 4;
    if (need(m, (size_t)n)) return -1;
    int64_t index = (int64_t)read_le(m, n);
    if (index >= m->memo_cap || !m->memo[index]) return fail(m, "corrupt pickle: memo entry %lld missing", (long long)index);
    return push(m, m->memo[index]);
}

/* ---- globals and the calls they allow ------------------------------------------------------------------ */

static int str_is(const value *v, const char *s)
{
    return v && (v->kind == V_STR || v->kind == V_BYTES) && v->n == (int64_t)strlen(s) && !memcmp(v->s, s, (size_t)v->n);
}

/* The few globals that rebuild arrays; anything else is refused by name. */
static int global(machine *m, const char *module, size_t mlen, const char *name, size_t nlen)
{
    static const struct { const char *module, *name; gkind kind; } allowed[] = {
        {"numpy.core.multiarray", "_reconstruct", G_RECONSTRUCT}, {"numpy._core.multiarray", "_reconstruct", G_RECONSTRUCT},
        {"numpy", "ndarray", G_NDARRAY}, {"numpy", "memmap", G_NDARRAY}, {"numpy", "dtype", G_DTYPE},
        {"numpy.core.multiarray", "scalar", G_SCALAR}, {"numpy._core.multiarray", "scalar", G_SCALAR},
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
    return fail(m, "refusing to load global %.*s.%.*s: only numpy array reconstruction is allowed (tshost never executes pickled code)",
                (int)(mlen > 120 ? 120 : mlen), module, (int)(nlen > 120 ? 120 : nlen), name);
}

/* GLOBAL module\nname\n, both lines inside the current frame */
static int global_lines(machine *m)
{
    const char *start = (const char *)m->buf + m->pos;
    const char *nl1 = memchr(start, '\n', m->end - m->pos);
    const char *nl2 = nl1 ? memchr(nl1 + 1, '\n', m->end - m->pos - (size_t)(nl1 + 1 - start)) : NULL;
    if (!nl2) return need(m, m->end - m->pos + 1);   /* fails, saying whether the frame or the file ended */
    m->pos += (size_t)(nl2 + 1 - start);
    return global(m, start, (size_t)(nl1 - start), nl1 + 1, (size_t)(nl2 - nl1 - 1));
}

static int stack_global(machine *m)
{
    value *b = pop(m), *a = b ? pop(m) : NULL;
    if (!a) return -1;
    if (a->kind != V_STR || b->kind != V_STR) return fail(m, "corrupt pickle: %s", "STACK_GLOBAL of non-strings");
    return global(m, (const char *)a->s, (size_t)a->n, (const char *)b->s, (size_t)b->n);
}

static value *new_array(machine *m)
{
    value *v = new_value(m, V_ARRAY);
    if (v && (v->arr = arena_alloc(m, sizeof(pickled_array)))) *v->arr = (pickled_array){0};
    return v && v->arr ? v : NULL;
}

/* dtype('u2', False, True): the type code, with the byte order from a '<' prefix or later from BUILD */
static value *reduce_dtype(machine *m, const value *args)
{
    if (args->n < 1 || (args->items[0]->kind != V_STR && args->items[0]->kind != V_BYTES)) {
        fail(m, "corrupt pickle: %s", "dtype() without a type code");
        return NULL;
    }
    value *d = new_value(m, V_DTYPE);
    if (!d) return NULL;
    d->s = args->items[0]->s;
    d->n = args->items[0]->n;
    d->order = d->n > 0 && is_order(d->s[0]) ? (char)d->s[0] : '=';
    return d;
}

/* _frombuffer(buffer, dtype, shape, order[, axes]): numpy 2's protocol 5 arrays; an array contiguous in
 * neither order (a permuted view, as torch's permute(0, 2, 3, 1).numpy()) comes as order 'K' and the axes */
static value *reduce_frombuffer(machine *m, const value *args)
{
    int permuted = args->n == 5 && args->items[4]->kind == V_TUPLE;
    if ((args->n != 4 && args->n != 5) || args->items[0]->kind != V_BYTES || args->items[1]->kind != V_DTYPE ||
        (permuted && !str_is(args->items[3], "K"))) {
        fail(m, "corrupt pickle: %s", "_frombuffer arguments");
        return NULL;
    }
    value *a = new_array(m);
    if (a) *a->arr = (pickled_array){.shape = args->items[2], .dtype = args->items[1], .data = args->items[0],
                                     .fortran = str_is(args->items[3], "F"), .axes = permuted ? args->items[4] : NULL};
    return a;
}

/* scalar(dtype, bytes): a numpy scalar kept beside the arrays (n_classes = y.max() + 1 is an np.int64), as a
 * 0-d array */
static value *reduce_scalar(machine *m, const value *args)
{
    if (args->n != 2 || args->items[0]->kind != V_DTYPE || args->items[1]->kind != V_BYTES) {
        fail(m, "corrupt pickle: %s", "numpy scalar arguments");
        return NULL;
    }
    value *a = new_array(m);
    if (a) *a->arr = (pickled_array){.shape = &m->empty_tuple, .dtype = args->items[0], .data = args->items[1]};
    return a;
}

/* _codecs.encode(text, 'latin1'): protocol 2's bytes, the text being UTF-8 of code points below 256 */
static value *reduce_encode(machine *m, const value *args)
{
    if (args->n != 2 || args->items[0]->kind != V_STR || !str_is(args->items[1], "latin1")) {
        fail(m, "corrupt pickle: %s", "_codecs.encode arguments");
        return NULL;
    }
    const value *t = args->items[0];
    value *out = new_value(m, V_BYTES);
    unsigned char *b = out ? arena_alloc(m, (size_t)t->n) : NULL;
    if (!b) return NULL;
    int64_t n = 0;
    for (int64_t i = 0; i < t->n; i++) {
        unsigned char c = t->s[i];
        if (c < 0x80) b[n++] = c;
        else if ((c == 0xC2 || c == 0xC3) && i + 1 < t->n && (t->s[i + 1] & 0xC0) == 0x80)   /* U+0080..U+00FF */
            b[n++] = (unsigned char)((c & 0x03) << 6 | (t->s[++i] & 0x3F));
        else {
            fail(m, "corrupt pickle: %s", "latin1 text that is not UTF-8 of code points below 256");
            return NULL;
        }
    }
    out->s = b;
    out->n = n;
    return out;
}

/* REDUCE: callable(*args) for the allowed callables */
static int reduce(machine *m)
{
    value *args = pop(m), *callable = args ? pop(m) : NULL;
    if (!callable) return -1;
    if (callable->kind != V_GLOBAL || args->kind != V_TUPLE) return fail(m, "corrupt pickle: %s", "REDUCE of a non-global");
    switch ((gkind)callable->i) {
    case G_RECONSTRUCT: return push(m, new_array(m));   /* _reconstruct(ndarray, (0,), b'b'): empty, filled by BUILD */
    case G_DTYPE: return push(m, reduce_dtype(m, args));
    case G_FROMBUFFER: return push(m, reduce_frombuffer(m, args));
    case G_ENCODE: return push(m, reduce_encode(m, args));
    case G_SCALAR: return push(m, reduce_scalar(m, args));
    default: return fail(m, "corrupt pickle: %s", "ndarray called directly");
    }
}

/* BUILD: obj.__setstate__(state) for arrays and dtypes */
static int build(machine *m)
{
    value *state = pop(m), *obj = state ? pop(m) : NULL;
    if (!obj) return -1;
    if (obj->kind == V_DTYPE) {
        /* (version, byteorder, subarray, names, fields, elsize, alignment, flags) */
        const value *order = state->kind == V_TUPLE && state->n >= 2 ? state->items[1] : NULL;
        if (order && (order->kind == V_STR || order->kind == V_BYTES) && order->n == 1) {   /* bytes from Python 2 */
            if (!is_order(order->s[0])) return fail(m, "corrupt pickle: dtype byte order 0x%02x", order->s[0]);
            obj->order = (char)order->s[0];
        }
        return push(m, obj);
    }
    if (obj->kind != V_ARRAY) return fail(m, "corrupt pickle: %s", "BUILD on an object that is not an array");
    /* (version, shape, dtype, is_fortran, data): the data are bytes, or a list for object arrays */
    /* is_fortran is an int to numpy's __setstate__ (a bool, or 1 in a hand-made file, means Fortran order); None or
     * a float fail there, and were read as C order here: the array came back transposed */
    if (state->kind != V_TUPLE || state->n != 5 || state->items[2]->kind != V_DTYPE ||
        (state->items[3]->kind != V_BOOL && state->items[3]->kind != V_INT))
        return fail(m, "corrupt pickle: %s", "array state");
    *obj->arr = (pickled_array){.shape = state->items[1], .dtype = state->items[2], .data = state->items[4],
                                .fortran = state->items[3]->i != 0};
    return push(m, obj);
}

/* ---- the opcodes -------------------------------------------------------------------------------------- */

static int push_int(machine *m, int bytes, int is_signed)
{
    if (need(m, (size_t)bytes)) return -1;
    uint64_t raw = read_le(m, bytes);
    value *v = new_value(m, V_INT);
    if (v) v->i = is_signed ? (int64_t)(int32_t)(uint32_t)raw : (int64_t)raw;
    return push(m, v);
}

static int long1(machine *m)
{
    if (need(m, 1)) return -1;
    int n = m->buf[m->pos++];
    if (n > 8) return fail(m, "integer of %d bytes is too large", n);
    if (need(m, (size_t)n)) return -1;
    uint64_t raw = read_le(m, n);
    if (n > 0 && n < 8 && (raw >> (8 * n - 1)) & 1) raw |= ~0ull << (8 * n);   /* sign-extend */
    value *v = new_value(m, V_INT);
    if (v) v->i = (int64_t)raw;
    return push(m, v);
}

static int binfloat(machine *m)
{
    if (need(m, 8)) return -1;
    uint64_t raw = 0;
    for (int i = 0; i < 8; i++) raw = raw << 8 | m->buf[m->pos + (size_t)i];   /* big-endian */
    m->pos += 8;
    value *v = new_value(m, V_FLOAT);
    if (v) memcpy(&v->f, &raw, 8);
    return push(m, v);
}

/* the string and bytes opcodes: a length of 1, 4 or 8 bytes, then that many bytes */
static int string(machine *m, unsigned char op)
{
    int n = (op == 0x8c || op == 'C' || op == 'U') ? 1 : (op == 0x8d || op == 0x8e || op == 0x96) ? 8 : 4;
    if (need(m, (size_t)n)) return -1;
    uint64_t len = read_le(m, n);
    if (need(m, len)) return -1;
    value *v = new_value(m, (op == 'X' || op == 0x8c || op == 0x8d) ? V_STR : V_BYTES);
    if (!v) return -1;
    v->s = m->buf + m->pos;
    v->n = (int64_t)len;
    m->pos += len;
    return push(m, v);
}

/* TUPLE, APPENDS, SETITEMS, POP_MARK: the items above the topmost MARK */
static int marked(machine *m, unsigned char op)
{
    int64_t mark = find_mark(m);
    if (mark < 0) return -1;
    if (op == '1') {   /* POP_MARK */
        m->sp = mark;
        return 0;
    }
    if (op == 't') {
        memmove(m->stack + mark, m->stack + mark + 1, sizeof(value *) * (size_t)(m->sp - mark - 1));
        m->sp--;
        return make_tuple(m, mark);
    }
    if (mark == 0) return fail(m, "corrupt pickle: %s", "nothing to append to");
    value *v = m->stack[mark - 1];
    if (op == 'e' && v->kind != V_LIST) return fail(m, "corrupt pickle: %s", "APPENDS to a non-list");
    if (op == 'u' && v->kind != V_DICT) return fail(m, "corrupt pickle: %s", "SETITEMS on a non-dict");
    if (op == 'u' && (m->sp - mark - 1) % 2) return fail(m, "corrupt pickle: %s", "odd number of dict items");
    for (int64_t i = mark + 1; i < m->sp; i++)
        if (append_item(m, v, m->stack[i])) return -1;
    m->sp = mark;
    return 0;
}

/* APPEND, SETITEM */
static int append_set(machine *m, unsigned char op)
{
    int n = op == 'a' ? 1 : 2;
    if (m->sp < n + 1) return fail(m, "corrupt pickle: %s", "stack underflow");
    value *v = m->stack[m->sp - n - 1];
    if (v->kind != (op == 'a' ? V_LIST : V_DICT)) return fail(m, "corrupt pickle: %s", "APPEND/SETITEM target");
    for (int i = n; i >= 1; i--)
        if (append_item(m, v, m->stack[m->sp - i])) return -1;
    m->sp -= n;
    return 0;
}

static int step(machine *m, unsigned char op)
{
    switch (op) {
    case 0x80:                                                                    /* PROTO */
        if (need(m, 1)) return -1;
        if (m->buf[m->pos] > 5) return fail(m, "pickle protocol %d is newer than 5", m->buf[m->pos]);
        m->pos++;
        return 0;
    case 0x95: return frame_begin(m);
    case '.': return 0;                                                           /* STOP: see stop() */
    case '(': return push(m, &m->mark);
    case 'N': return push(m, &m->none);
    case 0x88: return push(m, &m->yes);
    case 0x89: return push(m, &m->no);
    case ')': return push(m, &m->empty_tuple);
    case '}': return push(m, new_value(m, V_DICT));
    case ']': return push(m, new_value(m, V_LIST));
    case 'K': return push_int(m, 1, 0);
    case 'M': return push_int(m, 2, 0);
    case 'J': return push_int(m, 4, 1);
    case 0x8a: return long1(m);
    case 'G': return binfloat(m);
    case 'X': case 0x8c: case 0x8d: case 'B': case 'C': case 0x8e: case 0x96: case 'T': case 'U': return string(m, op);
    case 0x97: return fail(m, "%s", "out-of-band buffers (pickle protocol 5 NEXT_BUFFER) are not supported");
    case 0x98: return 0;                                                          /* READONLY_BUFFER */
    case 'q': case 'r': case 0x94: return memo_set(m, op);
    case 'h': case 'j': return memo_get(m, op);
    case 0x85: case 0x86: case 0x87:                                              /* TUPLE1-3 */
        if (m->sp < op - 0x84) return fail(m, "corrupt pickle: %s", "stack underflow");
        return make_tuple(m, m->sp - (op - 0x84));
    case 't': case 'e': case 'u': case '1': return marked(m, op);
    case 'a': case 's': return append_set(m, op);
    case '0': return pop(m) ? 0 : -1;
    case '2':
        if (m->sp == 0) return fail(m, "corrupt pickle: %s", "DUP of an empty stack");
        return push(m, m->stack[m->sp - 1]);
    case 'c': return global_lines(m);
    case 0x93: return stack_global(m);
    case 'R': return reduce(m);
    case 'b': return build(m);
    default: return fail(m, "unsupported or corrupt pickle opcode 0x%02x", op);
    }
}

/* STOP: a pickle ends with its one value on the stack, and with its frame */
static int stop(machine *m, value **result)
{
    if (m->sp != 1) return fail(m, "corrupt pickle: STOP with %lld values on the stack, not 1", (long long)m->sp);
    if (m->in_frame && m->pos != m->end)
        return fail(m, "corrupt pickle: STOP %zu bytes before the end of its frame (a byte lost or added?)", m->end - m->pos);
    *result = m->stack[0];
    return 0;
}

static int run(machine *m, value **result)
{
    for (;;) {
        frame_step(m);
        m->op_at = m->pos;
        int loose = m->framed && !m->in_frame;
        if (need(m, 1)) return -1;
        unsigned char op = m->buf[m->pos++];
        if (step(m, op)) return -1;
        if (loose && op != 0x95 && frame_check_loose(m)) return -1;
        if (op == '.') return stop(m, result);
    }
}

static void machine_free(machine *m)
{
    while (m->blocks) {
        arena_block *next = m->blocks->next;
        free(m->blocks);
        m->blocks = next;
    }
    free(m->stack);
    free(m->memo);
}

/* ---- arrays to tensors ---------------------------------------------------------------------------------- */

/* a numpy type code such as 'u2' or '<f8': kind letter and bytes per element */
typedef struct { char kind; int size; } numpy_type;

static int parse_type(const value *dtype, numpy_type *t)
{
    const unsigned char *s = dtype->s;
    int64_t n = dtype->n;
    if (n > 0 && is_order(s[0])) s++, n--;
    if (n < 2 || n > 6 || !strchr("biufcSUaOMmV", s[0])) return -1;
    int size = 0;
    for (int64_t i = 1; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        size = size * 10 + (s[i] - '0');
    }
    *t = (numpy_type){(char)s[0], size};
    return 0;
}

/* the tshost dtype a numpy type is read as, or -1 */
static int tensor_dtype(numpy_type t)
{
    static const struct { char kind; int size, dtype; } reads[] = {
        {'b', 1, TS_UINT8}, {'u', 1, TS_UINT8}, {'i', 1, TS_INT32}, {'u', 2, TS_INT32}, {'i', 2, TS_INT32},
        {'i', 4, TS_INT32}, {'u', 4, TS_INT64}, {'i', 8, TS_INT64}, {'u', 8, TS_INT64}, {'f', 2, TS_FLOAT32},
        {'f', 4, TS_FLOAT32}, {'f', 8, TS_FLOAT64},
    };
    for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++)
        if (reads[i].kind == t.kind && reads[i].size == t.size) return reads[i].dtype;
    return -1;
}

/* why a numpy type that tensor_dtype refuses is not read */
static const char *unreadable_kind(numpy_type t)
{
    switch (t.kind) {
    case 'c': return "complex numbers (tshost tensors are real)";
    case 'S': case 'a': return "an array of byte strings";
    case 'U': return "an array of text strings";
    case 'O': return "an array of Python objects";
    case 'M': return "datetime64 values";
    case 'm': return "timedelta64 values";
    case 'V': return "a structured (record) array";
    case 'f': return "floats of a width tshost does not read (long double?)";
    default: return "a numpy type code tshost does not read";
    }
}

/* n elements of numpy type t (big-endian when swap) into a tensor's data of dtype; -1 when a uint64 value
 * does not fit int64 */
static int convert_elements(void *out, int dtype, const unsigned char *in, int64_t n, numpy_type t, int swap)
{
    int bits = 8 * t.size;
    for (int64_t e = 0; e < n; e++, in += t.size) {
        uint64_t raw = 0;
        for (int b = 0; b < t.size; b++) raw |= (uint64_t)in[swap ? t.size - 1 - b : b] << (8 * b);
        int64_t whole = t.kind == 'i' && bits < 64 ? (int64_t)(raw << (64 - bits)) >> (64 - bits) : (int64_t)raw;
        if (t.kind == 'u' && bits == 64 && whole < 0) return -1;
        switch (dtype) {
        case TS_UINT8: ((uint8_t *)out)[e] = t.kind == 'b' ? raw != 0 : (uint8_t)raw; break;
        case TS_INT32: ((int32_t *)out)[e] = (int32_t)whole; break;
        case TS_INT64: ((int64_t *)out)[e] = whole; break;
        case TS_FLOAT32:
            if (t.size == 2) ((float *)out)[e] = ts_half_to_float((uint16_t)raw);
            else memcpy((float *)out + e, &raw, 4);
            break;
        default: memcpy((double *)out + e, &raw, 8); break;
        }
    }
    return 0;
}

/* Whether tshost holds these bytes as they are: the same width and meaning, little-endian. */
static int same_layout(numpy_type t, char order, int dtype)
{
    return (order != '>' || t.size == 1) && t.kind != 'b' && ts_dtype_size(dtype) == t.size && (t.kind != 'u' || t.size == 1);
}

/* an array's shape into dims (numpy allows up to 64); its dim count, or -1 with an error naming what */
static int array_shape(const value *shape, const char *what, int64_t dims[64])
{
    if (shape->kind != V_TUPLE || shape->n > 64)
        return ts_error("%s: the array's shape is not a tuple of at most 64 sizes (corrupt pickle)", what);
    for (int64_t d = 0; d < shape->n; d++) {
        if (shape->items[d]->kind != V_INT) return ts_error("%s: the array's shape holds a non-integer (corrupt pickle)", what);
        dims[d] = shape->items[d]->i;
    }
    return (int)shape->n;
}

/* Where the array's dims lie in its data: perm[i] is the dim of the data's C-order layout that is the array's
 * dim i. Fortran order lays out the shape reversed; order 'K' lays out the pickled shape, the array being
 * its transpose by the axes (numpy's _frombuffer). Returns 0, or -1 with an error for axes that are not a
 * permutation of the dims. */
static int array_axes(const pickled_array *a, int ndim, const char *what, int perm[64])
{
    for (int i = 0; i < ndim; i++) perm[i] = a->fortran ? ndim - 1 - i : i;
    if (!a->axes) return 0;
    int seen[64] = {0};
    if (a->axes->n != ndim) return ts_error("%s: %lld axes for %d dims (corrupt pickle)", what, (long long)a->axes->n, ndim);
    for (int i = 0; i < ndim; i++) {
        const value *v = a->axes->items[i];
        if (v->kind != V_INT || v->i < 0 || v->i >= ndim || seen[v->i]++)
            return ts_error("%s: the axes are not a permutation of the %d dims (corrupt pickle)", what, ndim);
        perm[i] = (int)v->i;
    }
    return 0;
}

/* a contiguous tensor whose dim i is dim perm[i] of t (t is consumed) */
static ts_tensor *permuted(ts_tensor *t, int ndim, const int *perm)
{
    int at[64];   /* at[k]: the dim of t now in place k */
    for (int k = 0; k < ndim; k++) at[k] = k;
    for (int i = 0; i < ndim && t; i++) {
        int j = i;
        while (at[j] != perm[i]) j++;
        if (j == i) continue;
        ts_tensor *swapped = ts_tensor_transpose(t, i, j);
        ts_tensor_free(t);
        t = swapped;
        int keep = at[i];
        at[i] = at[j], at[j] = keep;
    }
    ts_tensor *out = t ? ts_tensor_contiguous(t) : NULL;
    ts_tensor_free(t);
    return out;
}

/* The tensor of a numeric array whose byte count was checked: copied as it is, or converted element by
 * element; NULL with *why set for uint64 values that int64 cannot hold. */
static ts_tensor *array_data(const pickled_array *a, numpy_type t, int dtype, int ndim, const int64_t *dims, int64_t numel,
                             const char **why)
{
    char order = a->dtype->order;
    int as_is = same_layout(t, order, dtype);
    ts_tensor *out = as_is ? ts_tensor_from_buffer(dtype, ndim, dims, a->data->s) : ts_tensor_new(dtype, ndim, dims);
    if (out && !as_is && convert_elements(ts_tensor_data(out), dtype, a->data->s, numel, t, order == '>')) {
        ts_tensor_free(out);
        *why = "uint64 values above 2^63-1, which int64 cannot hold";
        return NULL;
    }
    if (out) ts_tensor_plain_nans(out);
    return out;
}

/* The array under key as a tensor; NULL with *why (NULL on entry) set when it is skipped, NULL with an error when the file
 * is corrupt. Shapes come from the file: every product is checked. */
static ts_tensor *array_to_tensor(machine *m, const pickled_array *a, const char *key, const char **why)
{
    char what[300];
    snprintf(what, sizeof what, "%s: key '%.150s'", m->path, key);
    if (!a->dtype || !a->data || !a->shape) {
        ts_error("%s: the array was never filled in (corrupt pickle)", what);
        return NULL;
    }
    int64_t dims[64], numel, bytes;
    int ndim = array_shape(a->shape, what, dims), perm[64];
    numpy_type t = {0, 1};   /* an unknown type code: its size unknown, the shape still checked */
    int parsed = parse_type(a->dtype, &t) == 0;
    if (ndim < 0 || ts_shape_bytes(what, ndim, dims, t.size, &numel, &bytes)) return NULL;
    int dtype = parsed ? tensor_dtype(t) : -1;
    if (!parsed) *why = "a numpy dtype tshost does not know";
    else if (dtype < 0) *why = unreadable_kind(t);
    else if (ndim > TS_MAX_DIMS) *why = "more than 5 dims (tshost tensors hold at most 5)";
    if (*why) return NULL;
    if (a->data->kind != V_BYTES) ts_error("%s: the array's data is not raw bytes (corrupt pickle)", what);
    else if (a->data->n != bytes)
        ts_error("%s: the array holds %lld bytes where its shape needs %lld (corrupt pickle)", what, (long long)a->data->n,
                 (long long)bytes);
    else if (!array_axes(a, ndim, what, perm)) {
        /* the data in their own layout, then the array's dims put in place */
        int64_t layout[64];
        for (int i = 0; i < ndim; i++) layout[a->fortran ? ndim - 1 - i : i] = dims[i];
        ts_tensor *out = array_data(a, t, dtype, ndim, layout, numel, why);
        return out ? permuted(out, ndim, perm) : NULL;
    }
    return NULL;
}

/* what a value is, for the notes on skipped entries */
static const char *kind_name(const value *v)
{
    static const char *kinds[] = {"None", "a Python bool", "a Python int", "a Python float", "a Python str", "Python bytes",
                                  "a Python tuple", "a Python list", "a Python dict", "a numpy function", "a numpy array",
                                  "a numpy dtype", "a MARK"};
    return kinds[v->kind];
}

void ts_pickle_free(ts_pickle *p)
{
    if (!p) return;
    for (int i = 0; i < p->count; i++) {
        free(p->keys[i]);
        ts_tensor_free(p->tensors[i]);
    }
    for (int i = 0; i < p->skipped_count; i++) free(p->skipped[i]);
    free(p->keys);
    free(p->tensors);
    free(p->skipped);
    free(p);
}

/* "key: why", for ts_pickle_skipped */
static int note_skipped(ts_pickle *p, const char *key, const char *why, const char *extra)
{
    size_t len = strlen(key) + strlen(why) + strlen(extra) + 8;
    char *s = malloc(len);
    if (!s) return ts_error("out of memory");
    snprintf(s, len, "%s: %s%s", key, why, extra);
    p->skipped[p->skipped_count++] = s;
    return 0;
}

/* a dict key as text: a string as it is (its first 1000 bytes), an int in decimal, anything else by its kind */
static char *key_text(const value *k)
{
    char text[64];
    if (k->kind == V_STR || k->kind == V_BYTES) return strndup((const char *)k->s, (size_t)(k->n > 1000 ? 1000 : k->n));
    if (k->kind == V_INT) snprintf(text, sizeof text, "%lld", (long long)k->i);
    else snprintf(text, sizeof text, "(%s)", kind_name(k));
    return strdup(text);
}

/* one dict entry: a tensor, a note of why it is skipped, or an error */
static int take_entry(machine *m, ts_pickle *p, const value *k, const value *v)
{
    char *key = key_text(k);
    if (!key) return ts_error("out of memory");
    const char *why = NULL, *extra = "";
    ts_tensor *t = NULL;
    if (k->kind != V_STR && k->kind != V_BYTES && k->kind != V_INT) why = "a key that is not a string or an int";
    else if (v->kind != V_ARRAY) why = kind_name(v), extra = ", not an array";
    else t = array_to_tensor(m, v->arr, key, &why);
    if (t) {
        p->keys[p->count] = key;
        p->tensors[p->count++] = t;
        return 0;
    }
    int rc = why ? note_skipped(p, key, why, extra) : -1;   /* no reason: array_to_tensor's error */
    free(key);
    return rc;
}

static ts_pickle *entries(machine *m, const value *top)
{
    if (top->kind != V_DICT) {
        fail(m, "the pickle holds %s, not a dict of arrays", kind_name(top));
        return NULL;
    }
    int64_t pairs = top->n / 2;
    if (pairs > 1 << 30) {
        fail(m, "the dict holds %lld entries, more than tshost reads", (long long)pairs);
        return NULL;
    }
    ts_pickle *p = calloc(1, sizeof *p);
    if (!p || !(p->keys = calloc((size_t)pairs + 1, sizeof(char *))) || !(p->tensors = calloc((size_t)pairs + 1, sizeof(ts_tensor *))) ||
        !(p->skipped = calloc((size_t)pairs + 1, sizeof(char *)))) {
        ts_error("%s: out of memory for %lld entries", m->path, (long long)pairs);
        ts_pickle_free(p);
        return NULL;
    }
    for (int64_t i = 0; i < pairs; i++)
        if (take_entry(m, p, top->items[2 * i], top->items[2 * i + 1])) {
            ts_pickle_free(p);
            return NULL;
        }
    return p;
}

/* protocols 2 to 5 begin with PROTO; anything else is named for what it is, not by its first opcode, and is
 * refused before the rest is read */
static int pickle_first_bytes(const char *path, const unsigned char *b, size_t n)
{
    if (!n || b[0] == 0x80) return 0;
    const char *kind = ts_file_kind(b, n, NULL);
    if (kind) return ts_error("%s: is %s, not a pickle", path, kind);
    return ts_error("%s: not a pickle of protocol 2 to 5 (0x%02x at byte 0, not PROTO): protocols 0 and 1 are not "
                    "read; save it again with pickle.dump(data, f, protocol=4)", path, b[0]);
}

ts_pickle *ts_pickle_load(const char *path)
{
    size_t size = 0;
    unsigned char *buf = ts_read_file(path, SIZE_MAX, &size, pickle_first_bytes);
    if (!buf) return NULL;
    /* A dict of arrays needs values of about its own size (protocol 2 decodes its bytes into the arena);
     * four times that, and room for a small file's thousands of values, stops a flood of cheap opcodes. */
    machine m = {.path = path, .buf = buf, .size = size, .end = size, .loose_from = NO_LOOSE_RUN, .budget = 4 * size + (64 << 20),
                 .none = {.kind = V_NONE}, .mark = {.kind = V_MARK}, .yes = {.kind = V_BOOL, .i = 1}, .no = {.kind = V_BOOL},
                 .empty_tuple = {.kind = V_TUPLE}};
    value *top = NULL;
    ts_pickle *out = NULL;
    if (!run(&m, &top)) {
        m.op_at = m.pos;
        out = entries(&m, top);
    }
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
int ts_pickle_skipped_count(const ts_pickle *p) { return p->skipped_count; }
const char *ts_pickle_skipped(const ts_pickle *p, int i) { return i >= 0 && i < p->skipped_count ? p->skipped[i] : NULL; }
