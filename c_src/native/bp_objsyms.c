/* bp_objsyms.c - full symbol tables of loaded objects: the object's
 * .symtab, else a debug file by build-id, else by .gnu_debuglink (CRC
 * checked). See bp_objsyms.h for the contracts and the search order.
 */
#include "bp_objsyms.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BP_PATH_MAX 4096

/* ---------------------------------------------------------------- files */

/* An opened regular file and its ELF view. */
struct bp_file {
    int fd;
    struct stat st;
    struct bp_elf elf;
};

/* Opens path as an ELF file: BP_ELF_OK, BP_ELF_NONE when there is no such
 * regular file, BP_ELF_BAD when it is not one we read, BP_ELF_NOMEM. */
static int bp_file_open(struct bp_file *f, const char *path)
{
    memset(f, 0, sizeof *f);
    f->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (f->fd < 0)
        return BP_ELF_NONE;
    if (fstat(f->fd, &f->st) != 0 || !S_ISREG(f->st.st_mode)) {
        close(f->fd);
        f->fd = -1;
        return BP_ELF_NONE;
    }
    struct bp_elf_src src = {.buf = NULL, .fd = f->fd, .size = (uint64_t)f->st.st_size};
    int rc = bp_elf_open(&f->elf, &src);
    if (rc != BP_ELF_OK) {
        close(f->fd);
        f->fd = -1;
    }
    return rc;
}

static void bp_file_close(struct bp_file *f)
{
    if (f->fd >= 0) {
        bp_elf_close(&f->elf);
        close(f->fd);
    }
    f->fd = -1;
}

static char *bp_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p != NULL)
        memcpy(p, s, n);
    return p;
}

/* Notes a refused candidate (the first few). -1 when out of memory. */
static int bp_reject(struct bp_obj *obj, const char *path, enum bp_obj_reject why)
{
    if (obj->nrejected >= BP_OBJ_REJECTED_MAX)
        return 0;
    char *p = bp_strdup(path);
    if (p == NULL)
        return -1;
    obj->rejected[obj->nrejected].path = p;
    obj->rejected[obj->nrejected].reason = why;
    obj->nrejected++;
    return 0;
}

/* Takes f's function symbols into obj when it has some: 1 taken, 0 not
 * (a reason noted when reject is set), -1 out of memory. */
static int bp_take_syms(struct bp_obj *obj, struct bp_file *f, const char *path,
                        enum bp_obj_source source, int reject)
{
    struct bp_elf_syms syms;
    int rc = bp_elf_func_syms(&f->elf, &syms);
    if (rc == BP_ELF_NOMEM)
        return -1;
    if (rc != BP_ELF_OK || syms.n == 0) {
        bp_elf_syms_free(&syms);
        if (!reject)
            return 0;
        return bp_reject(obj, path,
                         rc == BP_ELF_BAD ? BP_REJ_MALFORMED : BP_REJ_NO_SYMBOLS);
    }
    char *df = source == BP_OBJ_SYMTAB ? NULL : bp_strdup(path);
    if (source != BP_OBJ_SYMTAB && df == NULL) {
        bp_elf_syms_free(&syms);
        return -1;
    }
    obj->syms = syms;
    obj->source = source;
    obj->debug_file = df;
    return 1;
}

/* ------------------------------------------------------------- build-id */

size_t bp_obj_build_id_hex(const struct bp_obj *obj, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (size_t i = 0; i < obj->build_id_len && n + 2 < cap; i++) {
        out[n++] = hex[obj->build_id[i] >> 4];
        out[n++] = hex[obj->build_id[i] & 15];
    }
    if (cap > 0)
        out[n] = '\0';
    return n;
}

/* 0 when f's build-id is the object's, else the reason (-1: no memory). */
static int bp_check_build_id(const struct bp_obj *obj, struct bp_file *f)
{
    uint8_t id[BP_ELF_MAX_BUILD_ID];
    size_t len = 0;
    int rc = bp_elf_build_id(&f->elf, id, sizeof id, &len);
    if (rc == BP_ELF_NOMEM)
        return -1;
    if (rc != BP_ELF_OK || len != obj->build_id_len ||
        memcmp(id, obj->build_id, len) != 0)
        return BP_REJ_BUILD_ID_MISMATCH;
    return 0;
}

/* 0 when f is not the object itself and its CRC-32 is crc, else the
 * reason. */
static int bp_check_crc(struct bp_file *f, uint32_t crc, const struct stat *self)
{
    uint32_t got = 0;
    if (f->st.st_dev == self->st_dev && f->st.st_ino == self->st_ino)
        return BP_REJ_SAME_FILE;
    if (bp_elf_file_crc32(f->fd, (uint64_t)f->st.st_size, &got) != 0 || got != crc)
        return BP_REJ_CRC_MISMATCH;
    return 0;
}

/* One candidate debug file, checked as how says (BP_OBJ_BUILD_ID: its
 * build-id; BP_OBJ_DEBUGLINK: its CRC against crc, and not self): 1 taken,
 * 0 not (absent, or refused and noted), -1 out of memory. */
static int bp_try_candidate(struct bp_obj *obj, const char *path,
                            enum bp_obj_source how, uint32_t crc,
                            const struct stat *self)
{
    struct bp_file f;
    int rc = bp_file_open(&f, path);
    if (rc == BP_ELF_NOMEM)
        return -1;
    if (rc == BP_ELF_NONE)
        return 0;
    if (rc == BP_ELF_BAD)
        return bp_reject(obj, path, BP_REJ_MALFORMED);
    int why = how == BP_OBJ_BUILD_ID ? bp_check_build_id(obj, &f)
                                     : bp_check_crc(&f, crc, self);
    int taken = why < 0   ? -1
                : why > 0 ? bp_reject(obj, path, (enum bp_obj_reject)why)
                          : bp_take_syms(obj, &f, path, how, 1);
    bp_file_close(&f);
    return taken;
}

/* <root>/.build-id/ab/cdef....debug: 1 taken, 0 not, -1 out of memory. */
static int bp_by_build_id(struct bp_obj *obj, const char *root, const struct stat *self)
{
    char hex[2 * BP_ELF_MAX_BUILD_ID + 1], path[BP_PATH_MAX];
    if (obj->build_id_len < 2)
        return 0;
    bp_obj_build_id_hex(obj, hex, sizeof hex);
    int n =
        snprintf(path, sizeof path, "%s/.build-id/%.2s/%s.debug", root, hex, hex + 2);
    if (n < 0 || (size_t)n >= sizeof path)
        return 0;
    return bp_try_candidate(obj, path, BP_OBJ_BUILD_ID, 0, self);
}

/* ------------------------------------------------------------ debuglink */

/* The object's directory, its .debug/, <root>/<directory>/ (gdb's order). */
static int bp_by_debuglink(struct bp_obj *obj, const char *root, uint32_t crc,
                           const struct stat *self)
{
    char dir[BP_PATH_MAX], path[BP_PATH_MAX];
    const char *slash = strrchr(obj->path, '/');
    size_t dlen = slash ? (size_t)(slash - obj->path) : 1;
    if (dlen >= sizeof dir)
        return 0;
    memcpy(dir, slash ? obj->path : ".", dlen);
    dir[dlen] = '\0';
    const char *fmt[] = {"%s%s/%s", "%s%s/.debug/%s", "%s%s/%s"};
    for (int i = 0; i < 3; i++) {
        const char *prefix = i == 2 ? root : "";
        if (i == 2 && dir[0] != '/')
            break; /* a relative directory has no place under root */
        int n = snprintf(path, sizeof path, fmt[i], prefix, dir, obj->debuglink);
        if (n < 0 || (size_t)n >= sizeof path)
            continue;
        int rc = bp_try_candidate(obj, path, BP_OBJ_DEBUGLINK, crc, self);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* --------------------------------------------------------------- object */

int bp_obj_load(struct bp_obj *obj, const char *path, uint64_t bias, const char *root)
{
    char link[BP_ELF_MAX_DEBUGLINK];
    uint32_t crc = 0;
    struct bp_file f;
    memset(obj, 0, sizeof *obj);
    obj->bias = bias;
    obj->path = bp_strdup(path);
    if (obj->path == NULL)
        return -1;
    int open_rc = bp_file_open(&f, path);
    if (open_rc == BP_ELF_NOMEM)
        goto fail;
    if (open_rc != BP_ELF_OK)
        return 0; /* unreadable or not ELF: dladdr's names only */
    struct stat self = f.st;
    int taken = bp_take_syms(obj, &f, path, BP_OBJ_SYMTAB, 0);
    int id_rc = bp_elf_build_id(&f.elf, obj->build_id, sizeof obj->build_id,
                                &obj->build_id_len);
    int link_rc = bp_elf_debuglink(&f.elf, link, sizeof link, &crc);
    bp_file_close(&f);
    if (taken < 0 || id_rc == BP_ELF_NOMEM || link_rc == BP_ELF_NOMEM)
        goto fail;
    if (id_rc != BP_ELF_OK)
        obj->build_id_len = 0;
    if (link_rc == BP_ELF_OK && (obj->debuglink = bp_strdup(link)) == NULL)
        goto fail;
    if (taken == 0)
        taken = bp_by_build_id(obj, root, &self);
    if (taken == 0 && obj->debuglink != NULL)
        taken = bp_by_debuglink(obj, root, crc, &self);
    if (taken >= 0)
        return 0;
fail:
    bp_obj_free(obj);
    return -1;
}

void bp_obj_free(struct bp_obj *obj)
{
    free(obj->path);
    free(obj->debug_file);
    free(obj->debuglink);
    for (unsigned i = 0; i < obj->nrejected && i < BP_OBJ_REJECTED_MAX; i++)
        free(obj->rejected[i].path);
    bp_elf_syms_free(&obj->syms);
    memset(obj, 0, sizeof *obj);
}

const char *bp_obj_lookup(const struct bp_obj *obj, uint64_t addr, uint64_t *start)
{
    uint64_t vstart;
    if (obj->syms.n == 0 || addr < obj->bias)
        return NULL;
    const char *name = bp_elf_syms_lookup(&obj->syms, addr - obj->bias, &vstart);
    if (name != NULL && start != NULL)
        *start = vstart + obj->bias;
    return name;
}

/* ------------------------------------------------------------------ set */

int bp_objsyms_init(struct bp_objsyms *o, const char *root)
{
    memset(o, 0, sizeof *o);
    o->root = bp_strdup(root);
    if (o->root == NULL)
        return -1;
    if (pthread_mutex_init(&o->lock, NULL) != 0) {
        free(o->root);
        o->root = NULL;
        return -1;
    }
    return 0;
}

void bp_objsyms_free(struct bp_objsyms *o)
{
    if (o->root == NULL)
        return; /* never initialised */
    for (size_t i = 0; i < o->n; i++) {
        bp_obj_free(o->objs[i]);
        free(o->objs[i]);
    }
    free(o->objs);
    free(o->root);
    pthread_mutex_destroy(&o->lock);
    memset(o, 0, sizeof *o);
}

/* Adds a new object (lock held): its index, or -1. */
static long bp_objsyms_add(struct bp_objsyms *o, uint64_t base, uint64_t bias,
                           const char *path)
{
    if (o->n >= BP_OBJSYMS_MAX)
        return -1;
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 16;
        void *p = realloc(o->objs, cap * sizeof *o->objs);
        if (p == NULL)
            return -1;
        o->objs = p;
        o->cap = cap;
    }
    struct bp_obj *obj = malloc(sizeof *obj);
    if (obj == NULL)
        return -1;
    if (bp_obj_load(obj, path, bias, o->root) != 0) {
        free(obj);
        return -1;
    }
    obj->base = base;
    o->objs[o->n] = obj;
    return (long)o->n++;
}

long bp_objsyms_get(struct bp_objsyms *o, uint64_t base, uint64_t bias,
                    const char *path)
{
    long found = -1;
    pthread_mutex_lock(&o->lock);
    for (size_t i = 0; i < o->n && found < 0; i++)
        if (o->objs[i]->base == base && strcmp(o->objs[i]->path, path) == 0)
            found = (long)i;
    if (found < 0)
        found = bp_objsyms_add(o, base, bias, path);
    pthread_mutex_unlock(&o->lock);
    return found;
}

const struct bp_obj *bp_objsyms_at(struct bp_objsyms *o, size_t i)
{
    const struct bp_obj *obj = NULL;
    pthread_mutex_lock(&o->lock);
    if (i < o->n)
        obj = o->objs[i];
    pthread_mutex_unlock(&o->lock);
    return obj;
}
