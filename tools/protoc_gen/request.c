/*
 * The CodeGeneratorRequest parser: the protobuf wire format's reading half
 * and the few fields of descriptor.proto that protoc-gen-argot needs (see
 * protoc_gen.h for the field numbers).
 *
 * The input is untrusted: every varint is at most 10 bytes, every length
 * is checked against what is left, wire types are checked for the fields
 * read (unknown fields of any standard wire type are skipped; groups are
 * refused), nesting of messages is bounded (MAX_DEPTH) and every name that
 * generated code will hold is checked (identifiers, dotted names, file
 * paths). The first problem found is the one reported, with the byte
 * offset in the request where it is.
 *
 * Field order: protoc writes fields in number order, but a parser must not
 * count on it, so a message's name is found in a first pass over its bytes
 * and its members read in a second, and symbols get their package only
 * once the whole file has been read.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protoc_gen.h"

#define MAX_DEPTH 64     /* nested message definitions */
#define MAX_NAME 512     /* bytes in a name that goes into generated code */

typedef struct ctx {
    pg_request *r;
    const uint8_t *base; /* the request's first byte, for offsets */
} ctx;

typedef struct rd {
    const uint8_t *p;
    const uint8_t *end;
} rd;

typedef struct fld {
    uint32_t num;
    int wt;              /* wire type */
    uint64_t v;          /* wire type 0 */
    pg_slice s;          /* wire type 2 */
    size_t at;           /* offset of the key in the request */
} fld;

__attribute__((format(printf, 3, 4))) static int fail(ctx *x, size_t at, const char *fmt, ...)
{
    if (x->r->err[0])
        return -1;
    int n = snprintf(x->r->err, sizeof(x->r->err), "malformed CodeGeneratorRequest at byte %zu: ",
                     at);
    if (n < 0 || (size_t)n >= sizeof(x->r->err))
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->r->err + n, sizeof(x->r->err) - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static int oom(ctx *x)
{
    if (!x->r->err[0])
        snprintf(x->r->err, sizeof(x->r->err), "protoc-gen-argot: out of memory");
    return -1;
}

/* Room for one more element at arr[n]: the array (perhaps moved), or NULL
 * when out of memory (arr is then unchanged). Capacity doubles at powers
 * of two, so it is implied by n. */
static void *grow(void *arr, size_t n, size_t size)
{
    if (n & (n - 1))
        return arr;
    size_t cap = n ? 2 * n : 1;
    if (cap > SIZE_MAX / size)
        return NULL;
    return realloc(arr, cap * size);
}

#define PUSH(x, arr, n, out)                                                    \
    do {                                                                        \
        void *np_ = grow((arr), (n), sizeof(*(arr)));                           \
        if (!np_)                                                               \
            return oom(x);                                                      \
        (arr) = np_;                                                            \
        (out) = &(arr)[(n)++];                                                  \
        memset((out), 0, sizeof(*(out)));                                       \
    } while (0)

static int varint(rd *d, uint64_t *v)
{
    uint64_t r = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (d->p == d->end)
            return -1;
        uint8_t b = *d->p++;
        if (shift == 63 && b > 1)
            return -1;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

/* The next field of d: 1, 0 at the end of d, -1 when malformed. */
static int next(ctx *x, rd *d, fld *f, const char *where)
{
    if (d->p == d->end)
        return 0;
    f->at = (size_t)(d->p - x->base);
    uint64_t key;
    if (varint(d, &key) < 0)
        return fail(x, f->at, "%s: truncated or overlong field key", where);
    if ((key >> 3) == 0 || (key >> 3) > 0x1fffffff)
        return fail(x, f->at, "%s: field number %llu out of range", where,
                    (unsigned long long)(key >> 3));
    f->num = (uint32_t)(key >> 3);
    f->wt = (int)(key & 7);
    size_t left;
    switch (f->wt) {
    case 0:
        if (varint(d, &f->v) < 0)
            return fail(x, f->at, "%s: field %u: truncated or overlong varint", where, f->num);
        return 1;
    case 1:
    case 5:
        left = (size_t)(d->end - d->p);
        if (left < (f->wt == 1 ? 8u : 4u))
            return fail(x, f->at, "%s: field %u: truncated fixed-size value", where, f->num);
        d->p += f->wt == 1 ? 8 : 4;
        return 1;
    case 2: {
        uint64_t len;
        if (varint(d, &len) < 0)
            return fail(x, f->at, "%s: field %u: truncated or overlong length", where, f->num);
        left = (size_t)(d->end - d->p);
        if (len > left)
            return fail(x, f->at, "%s: field %u: length %llu runs past the end (%zu bytes left)",
                        where, f->num, (unsigned long long)len, left);
        f->s.p = d->p;
        f->s.n = (size_t)len;
        d->p += len;
        return 1;
    }
    default:
        return fail(x, f->at, "%s: field %u: unsupported wire type %d", where, f->num, f->wt);
    }
}

static int want(ctx *x, const fld *f, int wt, const char *where)
{
    if (f->wt == wt)
        return 0;
    return fail(x, f->at, "%s: field %u has wire type %d, expected %d", where, f->num, f->wt, wt);
}

/* A copy of f's bytes as a string (replacing *out: the last value wins, as
 * protobuf's rule for a repeated singular field says). */
static int dup_str(ctx *x, const fld *f, char **out, const char *where)
{
    if (want(x, f, 2, where) < 0)
        return -1;
    if (memchr(f->s.p, 0, f->s.n))
        return fail(x, f->at, "%s: field %u: a NUL byte in a string", where, f->num);
    char *s = malloc(f->s.n + 1);
    if (!s)
        return oom(x);
    memcpy(s, f->s.p, f->s.n);
    s[f->s.n] = 0;
    free(*out);
    *out = s;
    return 0;
}

static bool is_ident(const char *s)
{
    if (!s || !*s || strlen(s) > MAX_NAME)
        return false;
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
        return false;
    for (s++; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return false;
    return true;
}

/* "a.b.c": identifiers joined by dots (empty allowed if may_be_empty). */
static bool is_dotted(const char *s, bool may_be_empty)
{
    if (!*s)
        return may_be_empty;
    if (strlen(s) > MAX_NAME)
        return false;
    char piece[MAX_NAME + 1];
    while (*s) {
        size_t n = strcspn(s, ".");
        memcpy(piece, s, n);
        piece[n] = 0;
        if (!is_ident(piece))
            return false;
        s += n;
        if (*s == '.' && !*++s)
            return false;
    }
    return true;
}

/* A relative path of [A-Za-z0-9_.-/], no empty or ".." component: it goes
 * into #include lines and file names. */
static bool is_path(const char *s)
{
    if (!*s || strlen(s) > MAX_NAME || *s == '/')
        return false;
    for (const char *p = s; *p; p++) {
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '.' || *p == '-' || *p == '/'))
            return false;
        if (*p == '/' && (p[1] == '/' || p[1] == 0))
            return false;
    }
    return strstr(s, "../") == NULL && strcmp(s, "..") != 0 &&
           (strlen(s) < 3 || strcmp(s + strlen(s) - 3, "/..") != 0);
}

static int add_symbol(ctx *x, pg_file *file, const char *scope, const char *name, pg_sym_kind k)
{
    size_t n = strlen(scope) + 1 + strlen(name) + 1;
    char *full = malloc(n);
    if (!full)
        return oom(x);
    snprintf(full, n, "%s%s%s", scope, *scope ? "." : "", name);
    pg_symbol *sym;
    void *np = grow(file->symbols, file->nsymbols, sizeof(*file->symbols));
    if (!np) {
        free(full);
        return oom(x);
    }
    file->symbols = np;
    sym = &file->symbols[file->nsymbols++];
    sym->name = full;
    sym->kind = k;
    return 0;
}

/* The name (field 1) of a descriptor message, checked to be an identifier. */
static int find_name(ctx *x, pg_slice s, const char *what, size_t at, char **name)
{
    rd d = {s.p, s.p + s.n};
    fld f;
    for (;;) {
        int rc = next(x, &d, &f, what);
        if (rc < 0)
            return -1;
        if (rc == 0)
            break;
        if (f.num == 1 && dup_str(x, &f, name, what) < 0)
            return -1;
    }
    if (!*name)
        return fail(x, at, "%s without a name", what);
    if (!is_ident(*name))
        return fail(x, at, "%s name '%.80s' is not an identifier", what, *name);
    return 0;
}

static int parse_enum(ctx *x, pg_file *file, const char *scope, const fld *e)
{
    if (want(x, e, 2, "enum_type") < 0)
        return -1;
    char *name = NULL;
    int rc = find_name(x, e->s, "EnumDescriptorProto", e->at, &name);
    if (rc == 0)
        rc = add_symbol(x, file, scope, name, PG_SYM_ENUM);
    free(name);
    return rc;
}

static int parse_message(ctx *x, pg_file *file, const char *scope, const fld *m, unsigned depth)
{
    if (want(x, m, 2, "message_type") < 0)
        return -1;
    if (depth > MAX_DEPTH)
        return fail(x, m->at, "message definitions nested deeper than %d", MAX_DEPTH);
    char *name = NULL, *full = NULL;
    int rc = find_name(x, m->s, "DescriptorProto", m->at, &name);
    if (rc == 0)
        rc = add_symbol(x, file, scope, name, PG_SYM_MESSAGE);
    if (rc == 0) {
        full = strdup(file->symbols[file->nsymbols - 1].name);
        rc = full ? 0 : oom(x);
    }
    rd d = {m->s.p, m->s.p + m->s.n};
    fld f;
    while (rc == 0) {
        rc = next(x, &d, &f, "DescriptorProto");
        if (rc <= 0)
            break;
        rc = 0;
        if (f.num == 3)
            rc = parse_message(x, file, full, &f, depth + 1);
        else if (f.num == 4)
            rc = parse_enum(x, file, full, &f);
    }
    free(name);
    free(full);
    return rc;
}

static int parse_method(ctx *x, pg_service *svc, const fld *m)
{
    if (want(x, m, 2, "method") < 0)
        return -1;
    pg_method *me;
    PUSH(x, svc->methods, svc->nmethods, me);
    rd d = {m->s.p, m->s.p + m->s.n};
    fld f;
    for (;;) {
        int rc = next(x, &d, &f, "MethodDescriptorProto");
        if (rc < 0)
            return -1;
        if (rc == 0)
            break;
        if (f.num == 1)
            rc = dup_str(x, &f, &me->name, "MethodDescriptorProto.name");
        else if (f.num == 2)
            rc = dup_str(x, &f, &me->input, "MethodDescriptorProto.input_type");
        else if (f.num == 3)
            rc = dup_str(x, &f, &me->output, "MethodDescriptorProto.output_type");
        else if (f.num == 5 || f.num == 6) {
            rc = want(x, &f, 0, "MethodDescriptorProto streaming flag");
            if (f.num == 5)
                me->client_streaming = f.v != 0;
            else
                me->server_streaming = f.v != 0;
        }
        if (rc < 0)
            return -1;
    }
    if (!me->name || !is_ident(me->name))
        return fail(x, m->at, "method of service %s: %s", svc->name,
                    me->name ? "the name is not an identifier" : "no name");
    const char *types[2] = {me->input, me->output};
    for (int i = 0; i < 2; i++)
        if (!types[i] || types[i][0] != '.' || !is_dotted(types[i] + 1, false))
            return fail(x, m->at, "method %s.%s: %s type %s", svc->name, me->name,
                        i ? "output" : "input",
                        types[i] ? "is not a fully qualified name" : "missing");
    return 0;
}

static int parse_service(ctx *x, pg_file *file, const fld *s)
{
    if (want(x, s, 2, "service") < 0)
        return -1;
    pg_service *svc;
    PUSH(x, file->services, file->nservices, svc);
    if (find_name(x, s->s, "ServiceDescriptorProto", s->at, &svc->name) < 0)
        return -1;
    if (add_symbol(x, file, "", svc->name, PG_SYM_SERVICE) < 0)
        return -1;
    rd d = {s->s.p, s->s.p + s->s.n};
    fld f;
    for (;;) {
        int rc = next(x, &d, &f, "ServiceDescriptorProto");
        if (rc <= 0)
            return rc;
        if (f.num == 2) {
            if (parse_method(x, svc, &f) < 0)
                return -1;
            pg_method *me = &svc->methods[svc->nmethods - 1];
            if (add_symbol(x, file, svc->name, me->name, PG_SYM_METHOD) < 0)
                return -1;
        }
    }
}

/* Prefixes every symbol of file with its package. */
static int qualify(ctx *x, pg_file *file)
{
    if (!*file->package)
        return 0;
    for (size_t i = 0; i < file->nsymbols; i++) {
        size_t n = strlen(file->package) + 1 + strlen(file->symbols[i].name) + 1;
        char *full = malloc(n);
        if (!full)
            return oom(x);
        snprintf(full, n, "%s.%s", file->package, file->symbols[i].name);
        free(file->symbols[i].name);
        file->symbols[i].name = full;
    }
    return 0;
}

static int parse_file(ctx *x, const fld *pf)
{
    if (want(x, pf, 2, "CodeGeneratorRequest.proto_file") < 0)
        return -1;
    pg_request *r = x->r;
    pg_file *file;
    PUSH(x, r->files, r->nfiles, file);
    pg_buf desc = {0};
    rd d = {pf->s.p, pf->s.p + pf->s.n};
    fld f;
    int rc;
    for (;;) {
        const uint8_t *start = d.p;
        rc = next(x, &d, &f, "FileDescriptorProto");
        if (rc <= 0)
            break;
        rc = 0;
        if (f.num != 9) /* source_code_info stays out of the copy */
            pg_buf_put(&desc, start, (size_t)(d.p - start));
        if (f.num == 1)
            rc = dup_str(x, &f, &file->name, "FileDescriptorProto.name");
        else if (f.num == 2)
            rc = dup_str(x, &f, &file->package, "FileDescriptorProto.package");
        else if (f.num == 3) {
            char **dep;
            void *np = grow(file->deps, file->ndeps, sizeof(*file->deps));
            if (!np) {
                rc = oom(x);
                break;
            }
            file->deps = np;
            dep = &file->deps[file->ndeps++];
            *dep = NULL;
            rc = dup_str(x, &f, dep, "FileDescriptorProto.dependency");
            if (rc == 0 && !is_path(*dep))
                rc = fail(x, f.at, "dependency '%.80s' is not a relative path of [A-Za-z0-9_.-/]",
                          *dep);
        } else if (f.num == 4)
            rc = parse_message(x, file, "", &f, 1);
        else if (f.num == 5)
            rc = parse_enum(x, file, "", &f);
        else if (f.num == 6)
            rc = parse_service(x, file, &f);
        if (rc < 0)
            break;
    }
    if (rc == 0 && desc.failed)
        rc = oom(x);
    file->descriptor = desc.p;
    file->descriptor_len = desc.len;
    if (rc < 0)
        return -1;
    if (!file->name)
        return fail(x, pf->at, "a proto_file without a name");
    if (!is_path(file->name))
        return fail(x, pf->at, "file name '%.80s' is not a relative path of [A-Za-z0-9_.-/]",
                    file->name);
    if (!file->package && !(file->package = strdup("")))
        return oom(x);
    if (!is_dotted(file->package, true))
        return fail(x, pf->at, "%s: package '%.80s' is not a dotted name", file->name,
                    file->package);
    return qualify(x, file);
}

int pg_request_parse(pg_request *r, const uint8_t *data, size_t len)
{
    memset(r, 0, sizeof(*r));
    if (!data)
        data = (const uint8_t *)"";
    ctx x = {r, data};
    rd d = {data, data + len};
    fld f;
    for (;;) {
        int rc = next(&x, &d, &f, "CodeGeneratorRequest");
        if (rc <= 0)
            return rc;
        if (f.num == 1) {
            char **name;
            PUSH(&x, r->to_generate, r->ngenerate, name);
            if (dup_str(&x, &f, name, "CodeGeneratorRequest.file_to_generate") < 0)
                return -1;
        } else if (f.num == 2) {
            if (dup_str(&x, &f, &r->parameter, "CodeGeneratorRequest.parameter") < 0)
                return -1;
        } else if (f.num == 15) {
            if (parse_file(&x, &f) < 0)
                return -1;
        }
    }
}

static void file_free(pg_file *f)
{
    free(f->name);
    free(f->package);
    for (size_t i = 0; i < f->ndeps; i++)
        free(f->deps[i]);
    free(f->deps);
    for (size_t i = 0; i < f->nsymbols; i++)
        free(f->symbols[i].name);
    free(f->symbols);
    for (size_t i = 0; i < f->nservices; i++) {
        pg_service *s = &f->services[i];
        for (size_t j = 0; j < s->nmethods; j++) {
            free(s->methods[j].name);
            free(s->methods[j].input);
            free(s->methods[j].output);
        }
        free(s->methods);
        free(s->name);
    }
    free(f->services);
    free(f->descriptor);
}

void pg_request_free(pg_request *r)
{
    for (size_t i = 0; i < r->ngenerate; i++)
        free(r->to_generate[i]);
    free(r->to_generate);
    free(r->parameter);
    for (size_t i = 0; i < r->nfiles; i++)
        file_free(&r->files[i]);
    free(r->files);
    r->to_generate = NULL;
    r->files = NULL;
    r->parameter = NULL;
    r->ngenerate = r->nfiles = 0;
}
