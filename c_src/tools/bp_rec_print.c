/* bp_rec_print.c - a record as text or JSON, decoded with ei. Every size a
 * payload announces is checked against the payload's end before ei copies
 * it; fixed-size items are checked after (the caller pads, BP_REC_PAD). */
#include "bp_rec_print.h"

#include <ei.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_DEPTH 1000

struct ctx {
    const char *buf;
    int len; /* the payload's own bytes */
    int json;
};

static void put(struct bp_rec_line *l, const char *s, size_t n)
{
    if (l->oom)
        return;
    if (l->len + n + 1 > l->cap) {
        size_t cap = l->cap ? l->cap : 256;
        while (cap < l->len + n + 1)
            cap *= 2;
        char *p = realloc(l->p, cap);
        if (p == NULL) {
            l->oom = 1;
            return;
        }
        l->p = p;
        l->cap = cap;
    }
    memcpy(l->p + l->len, s, n);
    l->len += n;
    l->p[l->len] = '\0';
}

static void puts_(struct bp_rec_line *l, const char *s) { put(l, s, strlen(s)); }

static void putf(struct bp_rec_line *l, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        put(l, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t want = s[0] < 0x80 ? 1 : (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3
                : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (want == 0 || want > n || (want == 2 && s[0] < 0xC2) || (want == 4 && s[0] > 0xF4))
        return 0;
    for (size_t i = 1; i < want; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if (want == 3 && ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0)))
        return 0;
    if (want == 4 && ((s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90)))
        return 0;
    return want;
}

/* A JSON string of bytes s[0..n). */
static void json_string(struct bp_rec_line *l, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    put(l, "\"", 1);
    for (size_t i = 0; i < n;) {
        size_t k = utf8_len(u + i, n - i);
        if (k == 0) {
            puts_(l, "\\ufffd");
            i++;
        } else if (u[i] == '"' || u[i] == '\\') {
            put(l, "\\", 1);
            put(l, s + i, 1);
            i++;
        } else if (u[i] < 0x20) {
            putf(l, "\\u%04x", u[i]);
            i++;
        } else {
            put(l, s + i, k);
            i += k;
        }
    }
    put(l, "\"", 1);
}

/* An Erlang binary literal of bytes s[0..n). */
static void text_binary(struct bp_rec_line *l, const char *s, size_t n)
{
    puts_(l, "<<\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            putf(l, "\\%c", c);
        else if (c < 0x20 || c == 0x7F)
            putf(l, "\\x%02X", c);
        else
            put(l, s + i, 1);
    }
    puts_(l, "\">>");
}

static void text_or_json_string(struct bp_rec_line *l, const struct ctx *c, const char *s)
{
    if (c->json)
        json_string(l, s, strlen(s));
    else
        puts_(l, s);
}

static int term(struct bp_rec_line *l, const struct ctx *c, int *idx, int depth);

static int atom(struct bp_rec_line *l, const struct ctx *c, int *idx, char *out)
{
    if (ei_decode_atom_as(c->buf, idx, out, MAXATOMLEN_UTF8, ERLANG_UTF8, NULL, NULL) < 0 ||
        *idx > c->len)
        return -1;
    if (c->json && (strcmp(out, "true") == 0 || strcmp(out, "false") == 0))
        puts_(l, out);
    else if (c->json && strcmp(out, "undefined") == 0)
        puts_(l, "null");
    else
        text_or_json_string(l, c, out);
    return 0;
}

/* A bignum's digits (base 256, little-endian) in decimal. */
static int bignum(struct bp_rec_line *l, const struct ctx *c, int *idx)
{
    const unsigned char *p = (const unsigned char *)c->buf + *idx;
    size_t n, head;
    if (p[0] == ERL_SMALL_BIG_EXT) {
        n = p[1];
        head = 3;
    } else {
        n = bp_rec_u32((const uint8_t[]){p[4], p[3], p[2], p[1]});
        head = 6;
    }
    if (n > (size_t)c->len || *idx + head + n > (size_t)c->len)
        return -1;
    unsigned char *d = malloc(n + 1);
    char *dec = malloc(n * 3 + 2);
    if (d == NULL || dec == NULL) {
        free(d);
        free(dec);
        return -1;
    }
    memcpy(d, p + head, n);
    size_t nd = 0, top = n;
    while (top > 0) {
        unsigned rem = 0;
        for (size_t i = top; i-- > 0;) {
            unsigned cur = rem * 256 + d[i];
            d[i] = (unsigned char)(cur / 10);
            rem = cur % 10;
        }
        dec[nd++] = (char)('0' + rem);
        while (top > 0 && d[top - 1] == 0)
            top--;
    }
    if (nd == 0)
        dec[nd++] = '0';
    if (p[head - 1])
        put(l, "-", 1);
    for (size_t i = nd; i-- > 0;)
        put(l, dec + i, 1);
    free(d);
    free(dec);
    *idx += (int)(head + n);
    return 0;
}

static int integer(struct bp_rec_line *l, const struct ctx *c, int *idx)
{
    long long v;
    unsigned long long u;
    int save = *idx;
    if (ei_decode_longlong(c->buf, idx, &v) == 0 && *idx <= c->len) {
        putf(l, "%lld", v);
        return 0;
    }
    *idx = save;
    if (ei_decode_ulonglong(c->buf, idx, &u) == 0 && *idx <= c->len) {
        putf(l, "%llu", u);
        return 0;
    }
    *idx = save;
    return bignum(l, c, idx);
}

static int flt(struct bp_rec_line *l, const struct ctx *c, int *idx)
{
    double d;
    if (ei_decode_double(c->buf, idx, &d) < 0 || *idx > c->len)
        return -1;
    if (!isfinite(d)) {
        puts_(l, c->json ? "null" : "nan");
        return 0;
    }
    char tmp[40];
    /* JSON: the shortest of 15, 16, 17 digits that reads back the same. */
    for (int digits = c->json ? 15 : 6; digits <= 17; digits++) {
        snprintf(tmp, sizeof tmp, "%.*g", digits, d);
        if (!c->json || strtod(tmp, NULL) == d)
            break;
    }
    puts_(l, tmp);
    if (strpbrk(tmp, ".e") == NULL)
        puts_(l, ".0");
    return 0;
}

static int binary(struct bp_rec_line *l, const struct ctx *c, int *idx, int size)
{
    if (size < 0 || *idx + 5 + size > c->len)
        return -1;
    const char *data = c->buf + *idx + 5; /* BINARY_EXT: tag, u32 length, bytes */
    if (c->json)
        json_string(l, data, (size_t)size);
    else
        text_binary(l, data, (size_t)size);
    *idx += 5 + size;
    return 0;
}

/* A string (a list of bytes) as a list of integers. */
static int string(struct bp_rec_line *l, const struct ctx *c, int *idx, int size)
{
    if (size < 0 || *idx + 3 + size > c->len)
        return -1;
    const unsigned char *p = (const unsigned char *)c->buf + *idx + 3;
    put(l, "[", 1);
    for (int i = 0; i < size; i++)
        putf(l, i ? ",%u" : "%u", p[i]);
    put(l, "]", 1);
    *idx += 3 + size;
    return 0;
}

/* Elements of a tuple or list: `n' terms, then for a list its tail. */
static int elements(struct bp_rec_line *l, const struct ctx *c, int *idx, int n, int is_list,
                    int depth)
{
    put(l, c->json || is_list ? "[" : "{", 1);
    for (int i = 0; i < n; i++) {
        if (i)
            puts_(l, c->json ? "," : ", ");
        if (term(l, c, idx, depth + 1) < 0)
            return -1;
    }
    if (is_list && n > 0) {
        int type, size;
        if (*idx >= c->len || ei_get_type(c->buf, idx, &type, &size) < 0)
            return -1;
        if (type == ERL_NIL_EXT) {
            (*idx)++;
        } else {
            put(l, c->json ? "," : "|", 1);
            if (term(l, c, idx, depth + 1) < 0)
                return -1;
        }
    }
    put(l, c->json || is_list ? "]" : "}", 1);
    return 0;
}

/* A map key as JSON wants it: a string (other terms as their text). */
static int json_key(struct bp_rec_line *l, const struct ctx *c, int *idx, int depth)
{
    struct bp_rec_line k = {0};
    struct ctx text = *c;
    int type, size;
    text.json = 0;
    if (ei_get_type(c->buf, idx, &type, &size) < 0)
        return -1;
    int rc;
    if (type == ERL_BINARY_EXT && size >= 0 && *idx + 5 + size <= c->len) {
        put(&k, c->buf + *idx + 5, (size_t)size);
        *idx += 5 + size;
        rc = 0;
    } else {
        rc = term(&k, &text, idx, depth + 1);
    }
    if (rc == 0 && !k.oom)
        json_string(l, k.p ? k.p : "", k.len);
    bp_rec_line_free(&k);
    return rc;
}

static int map(struct bp_rec_line *l, const struct ctx *c, int *idx, int depth)
{
    int arity;
    if (ei_decode_map_header(c->buf, idx, &arity) < 0 || *idx > c->len)
        return -1;
    puts_(l, c->json ? "{" : "#{");
    for (int i = 0; i < arity; i++) {
        if (i)
            puts_(l, c->json ? "," : ", ");
        if ((c->json ? json_key(l, c, idx, depth) : term(l, c, idx, depth + 1)) < 0)
            return -1;
        puts_(l, c->json ? ":" : " => ");
        if (term(l, c, idx, depth + 1) < 0)
            return -1;
    }
    put(l, "}", 1);
    return 0;
}

/* Pids, ports, references, funs, bit strings: ei's text of them. */
static int other(struct bp_rec_line *l, const struct ctx *c, int *idx, int type, int size)
{
    if ((type == ERL_BIT_BINARY_EXT && *idx + 6 + size > c->len) ||
        (type == ERL_NEW_FUN_EXT &&
         (int64_t)*idx + 1 + bp_rec_u32((const uint8_t[]){(uint8_t)c->buf[*idx + 4],
                                                          (uint8_t)c->buf[*idx + 3],
                                                          (uint8_t)c->buf[*idx + 2],
                                                          (uint8_t)c->buf[*idx + 1]}) > c->len))
        return -1;
    char *s = NULL;
    if (ei_s_print_term(&s, c->buf, idx) < 0 || *idx > c->len) {
        free(s);
        return -1;
    }
    text_or_json_string(l, c, s);
    free(s);
    return 0;
}

static int term(struct bp_rec_line *l, const struct ctx *c, int *idx, int depth)
{
    int type, size, arity;
    char a[MAXATOMLEN_UTF8];
    if (depth > MAX_DEPTH || *idx >= c->len || ei_get_type(c->buf, idx, &type, &size) < 0)
        return -1;
    switch (type) {
    case ERL_SMALL_INTEGER_EXT: case ERL_INTEGER_EXT: case ERL_SMALL_BIG_EXT: case ERL_LARGE_BIG_EXT:
        return integer(l, c, idx);
    case ERL_FLOAT_EXT: case NEW_FLOAT_EXT:
        return flt(l, c, idx);
    case ERL_ATOM_EXT: case ERL_SMALL_ATOM_EXT: case ERL_ATOM_UTF8_EXT: case ERL_SMALL_ATOM_UTF8_EXT:
        return atom(l, c, idx, a);
    case ERL_BINARY_EXT:
        return binary(l, c, idx, size);
    case ERL_STRING_EXT:
        return string(l, c, idx, size);
    case ERL_NIL_EXT:
        (*idx)++;
        puts_(l, "[]");
        return 0;
    case ERL_LIST_EXT:
        if (ei_decode_list_header(c->buf, idx, &arity) < 0 || *idx > c->len)
            return -1;
        return elements(l, c, idx, arity, 1, depth);
    case ERL_SMALL_TUPLE_EXT: case ERL_LARGE_TUPLE_EXT:
        if (ei_decode_tuple_header(c->buf, idx, &arity) < 0 || *idx > c->len)
            return -1;
        return elements(l, c, idx, arity, 0, depth);
    case ERL_MAP_EXT:
        return map(l, c, idx, depth);
    default:
        return other(l, c, idx, type, size);
    }
}

/* The line's start: the record's time, seq, and for JSON mono_ns. */
static void prefix(struct bp_rec_line *l, const struct bp_rec_frame *f, int json)
{
    int64_t ms = f->sys_us >= 0 ? f->sys_us / 1000 : -((-f->sys_us + 999) / 1000);
    if (json) {
        putf(l, "{\"seq\":%llu", (unsigned long long)f->seq);
        putf(l, ",\"time\":%lld", (long long)ms);
        putf(l, ",\"mono_ns\":%lld", (long long)f->mono_ns);
        return;
    }
    time_t secs = (time_t)(ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000));
    struct tm tm;
    char when[40] = "?";
    if (gmtime_r(&secs, &tm) != NULL)
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    putf(l, "%s.%03dZ #%llu", when, (int)(ms - (int64_t)secs * 1000),
         (unsigned long long)f->seq);
}

/* Whether the key at idx is one of the atoms the reader sets itself. */
static int reserved_key(const char *buf, int idx)
{
    char a[MAXATOMLEN_UTF8];
    if (ei_decode_atom_as(buf, &idx, a, sizeof a, ERLANG_UTF8, NULL, NULL) < 0)
        return 0;
    return strcmp(a, "seq") == 0 || strcmp(a, "time") == 0 || strcmp(a, "mono_ns") == 0;
}

/* The payload map's entries into `body' (JSON: ",key:value" each; text:
 * " key=value" each, the kind apart into `kind'). */
static int entries(struct bp_rec_line *body, const struct ctx *c, int *idx, char *kind,
                   size_t kind_size)
{
    int arity, type, size;
    if (ei_get_type(c->buf, idx, &type, &size) < 0 || type != ERL_MAP_EXT ||
        ei_decode_map_header(c->buf, idx, &arity) < 0 || *idx > c->len)
        return -1;
    for (int i = 0; i < arity; i++) {
        char a[MAXATOMLEN_UTF8];
        int k = *idx, is_kind = 0;
        if (*idx < c->len && ei_decode_atom_as(c->buf, &k, a, sizeof a, ERLANG_UTF8, NULL, NULL) == 0 &&
            strcmp(a, "kind") == 0) {
            int v = k;
            is_kind = ei_decode_atom_as(c->buf, &v, kind, (int)kind_size, ERLANG_UTF8, NULL, NULL) == 0;
        }
        int skip = reserved_key(c->buf, *idx);
        struct bp_rec_line entry = {0};
        int rc = c->json ? json_key(&entry, c, idx, 0) : term(&entry, c, idx, 1);
        put(&entry, c->json ? ":" : "=", 1);
        rc = rc < 0 ? rc : term(&entry, c, idx, 1);
        if (rc == 0 && !skip && !(is_kind && !c->json)) {
            put(body, c->json ? "," : " ", 1);
            put(body, entry.p, entry.len);
        }
        bp_rec_line_free(&entry);
        if (rc < 0)
            return -1;
    }
    return 0;
}

int bp_rec_render(struct bp_rec_line *line, const struct bp_rec_frame *f, const char *payload,
                  enum bp_rec_format fmt, char *kind, size_t kind_size)
{
    struct ctx c = {payload, (int)f->len, fmt == BP_REC_JSON};
    struct bp_rec_line body = {0};
    int idx = 0, version;
    line->len = 0;
    line->oom = 0;
    kind[0] = '\0';
    int rc = ei_decode_version(payload, &idx, &version) < 0 ? -1
             : entries(&body, &c, &idx, kind, kind_size);
    if (rc == 0 && (idx != c.len || kind[0] == '\0' || body.oom))
        rc = -1;
    if (rc == 0) {
        prefix(line, f, c.json);
        if (!c.json) {
            put(line, " ", 1);
            puts_(line, kind);
        }
        put(line, body.p ? body.p : "", body.len);
        puts_(line, c.json ? "}\n" : "\n");
        rc = line->oom ? -1 : 0;
    }
    bp_rec_line_free(&body);
    return rc;
}

void bp_rec_line_free(struct bp_rec_line *line)
{
    free(line->p);
    line->p = NULL;
    line->len = line->cap = 0;
}
