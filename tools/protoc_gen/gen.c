/*
 * protoc-gen-argot's generator: for each file to generate, foo/bar.proto,
 * writes foo/bar.argot.h and foo/bar.argot.c beside protoc-c's
 * foo/bar.pb-c.{h,c} (which they include and link against).
 *
 * Names follow protoc-c's (CamelToLower and ToCamel, as protoc_gen.h says)
 * so that a method's names start with the prefix protoc-c gives it
 * (grpc__testing__test_service__unary_call) and add a suffix protoc-c never
 * emits (__method, __start, __send_request, __recv_response, __invoke,
 * __recv_request, __send_response, __serve); a service adds _Handlers and
 * __register; a file's reflection data is <id>__proto_file, where <id> is
 * its path with '/', '.', '-' as '_' and ".proto" dropped. Method names
 * that would still clash (one that lowers to "register" or "ud", or holds
 * "__") are refused with an error rather than generating code that does
 * not compile.
 *
 * Every name put into the output was checked by the parser (identifiers,
 * dotted names, paths of [A-Za-z0-9_.-/]), so none needs escaping.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protoc_gen.h"

#define NAME_CAP 4096

__attribute__((format(printf, 2, 3))) static int gfail(pg_output *o, const char *fmt, ...)
{
    if (o->err[0])
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->err, sizeof(o->err), fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- protoc-c's names ------------------------------------------------------------ */

static bool is_upper(char c)
{
    return c >= 'A' && c <= 'Z';
}

/* Appends a converted piece to out (len so far in *n); false if it does
 * not fit. lower: CamelToLower; otherwise ToCamel. */
static bool convert_piece(const char *s, size_t len, bool lower, char *out, size_t cap, size_t *n)
{
    bool was_upper = true, next_upper = true;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (*n + 3 > cap)
            return false;
        if (lower) {
            bool up = is_upper(c);
            if (up && !was_upper)
                out[(*n)++] = '_';
            out[(*n)++] = up ? (char)(c - 'A' + 'a') : c;
            was_upper = up;
        } else if (c == '_') {
            next_upper = true;
        } else {
            out[(*n)++] = next_upper && c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
            next_upper = false;
        }
    }
    return true;
}

/* A dotted name converted piece by piece and joined with "__" (empty
 * pieces, as from a leading dot, skipped). */
static bool convert_full(const char *full, bool lower, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = 0;
    while (*full) {
        size_t len = strcspn(full, ".");
        if (len) {
            if (n) {
                if (n + 3 > cap)
                    return false;
                out[n++] = '_';
                out[n++] = '_';
            }
            if (!convert_piece(full, len, lower, out, cap, &n))
                return false;
        }
        full += len;
        if (*full)
            full++;
    }
    out[n] = 0;
    return true;
}

char *pg_full_to_lower(const char *full)
{
    char buf[NAME_CAP];
    return convert_full(full, true, buf, sizeof(buf)) ? strdup(buf) : NULL;
}

char *pg_full_to_c(const char *full)
{
    char buf[NAME_CAP];
    return convert_full(full, false, buf, sizeof(buf)) ? strdup(buf) : NULL;
}

/* ---- per-file names ------------------------------------------------------------------ */

static size_t base_len(const char *name)
{
    size_t n = strlen(name);
    return n > 6 && strcmp(name + n - 6, ".proto") == 0 ? n - 6 : n;
}

/* "grpc/testing/test.proto" -> "grpc_testing_test" */
static void file_id(const char *name, char *out, size_t cap)
{
    size_t n = base_len(name);
    if (n >= cap)
        n = cap - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = name[i] == '/' || name[i] == '.' || name[i] == '-' ? '_' : name[i];
    out[n] = 0;
}

static const pg_file *find_file(const pg_request *r, const char *name)
{
    for (size_t i = 0; i < r->nfiles; i++)
        if (strcmp(r->files[i].name, name) == 0)
            return &r->files[i];
    return NULL;
}

static bool is_message(const pg_request *r, const char *type)
{
    for (size_t i = 0; i < r->nfiles; i++)
        for (size_t j = 0; j < r->files[i].nsymbols; j++)
            if (r->files[i].symbols[j].kind == PG_SYM_MESSAGE &&
                strcmp(r->files[i].symbols[j].name, type + 1) == 0)
                return true;
    return false;
}

/* The names one method's code uses. */
typedef struct mnames {
    char path[NAME_CAP];     /* "/grpc.testing.TestService/UnaryCall" */
    char field[NAME_CAP];    /* "unary_call": the handler table's member */
    char prefix[NAME_CAP];   /* "grpc__testing__test_service__unary_call" */
    char in_c[NAME_CAP];     /* "Grpc__Testing__SimpleRequest" */
    char in_lower[NAME_CAP]; /* "grpc__testing__simple_request" */
    char out_c[NAME_CAP];
    char out_lower[NAME_CAP];
    const char *kind;        /* "AG_RPC_UNARY" */
    const char *what;        /* "unary" */
    bool one_req;            /* unary, server streaming */
} mnames;

typedef struct snames {
    char full[NAME_CAP];     /* "grpc.testing.TestService" */
    char lower[NAME_CAP];    /* "grpc__testing__test_service" */
    char c[NAME_CAP];        /* "Grpc__Testing__TestService" */
} snames;

static int service_names(const pg_file *f, const pg_service *s, snames *sn, pg_output *o)
{
    int n = snprintf(sn->full, sizeof(sn->full), "%s%s%s", f->package, *f->package ? "." : "",
                     s->name);
    if (n < 0 || (size_t)n >= sizeof(sn->full) || !convert_full(sn->full, true, sn->lower, NAME_CAP) ||
        !convert_full(sn->full, false, sn->c, NAME_CAP))
        return gfail(o, "%s: service %s: name too long", f->name, s->name);
    return 0;
}

static int method_names(const pg_request *r, const pg_file *f, const snames *sn,
                        const pg_method *m, mnames *mn, pg_output *o)
{
    size_t n = 0;
    if (!convert_piece(m->name, strlen(m->name), true, mn->field, sizeof(mn->field), &n))
        return gfail(o, "%s: method %s.%s: name too long", f->name, sn->full, m->name);
    mn->field[n] = 0;
    if (strcmp(mn->field, "register") == 0 || strcmp(mn->field, "ud") == 0 ||
        strstr(mn->field, "__"))
        return gfail(o,
                     "%s: method %s.%s: its C name '%s' would clash with generated names "
                     "(rename the method)",
                     f->name, sn->full, m->name, mn->field);
    int a = snprintf(mn->path, sizeof(mn->path), "/%s/%s", sn->full, m->name);
    int b = snprintf(mn->prefix, sizeof(mn->prefix), "%s__%s", sn->lower, mn->field);
    if (a < 0 || b < 0 || (size_t)a >= sizeof(mn->path) || (size_t)b >= sizeof(mn->prefix) ||
        !convert_full(m->input, false, mn->in_c, NAME_CAP) ||
        !convert_full(m->input, true, mn->in_lower, NAME_CAP) ||
        !convert_full(m->output, false, mn->out_c, NAME_CAP) ||
        !convert_full(m->output, true, mn->out_lower, NAME_CAP))
        return gfail(o, "%s: method %s.%s: name too long", f->name, sn->full, m->name);
    const char *types[2] = {m->input, m->output};
    for (int i = 0; i < 2; i++)
        if (!is_message(r, types[i]))
            return gfail(o, "%s: method %s.%s: %s type %s is not a message of the request's files",
                         f->name, sn->full, m->name, i ? "output" : "input", types[i]);
    if (m->client_streaming && m->server_streaming) {
        mn->kind = "AG_RPC_BIDI_STREAMING";
        mn->what = "bidirectional streaming";
    } else if (m->client_streaming) {
        mn->kind = "AG_RPC_CLIENT_STREAMING";
        mn->what = "client streaming";
    } else if (m->server_streaming) {
        mn->kind = "AG_RPC_SERVER_STREAMING";
        mn->what = "server streaming";
    } else {
        mn->kind = "AG_RPC_UNARY";
        mn->what = "unary";
    }
    mn->one_req = !m->client_streaming;
    return 0;
}

/* ---- the header ------------------------------------------------------------------------ */

static void gen_method_decls(pg_buf *h, const pg_method *m, const mnames *mn)
{
    pg_buf_printf(h,
                  "/* rpc %s(%s%s) returns (%s%s): %s. */\n"
                  "extern const ag_rpc_method %s__method;\n\n",
                  m->name, m->client_streaming ? "stream " : "", m->input + 1,
                  m->server_streaming ? "stream " : "", m->output + 1, mn->what, mn->prefix);
    pg_buf_printf(h,
                  "/* Client: starts a call of %s (then send, close_send, receive; "
                  "ag_rpc_call_free). */\n"
                  "static inline ag_rpc_call *%s__start(ag_rpc_channel *ch, ag_deadline dl)\n"
                  "{\n"
                  "    return ag_rpc_call_start(ch, &%s__method, dl);\n"
                  "}\n\n",
                  m->name, mn->prefix, mn->prefix);
    pg_buf_printf(h,
                  "/* Client: sends a request (flags: AG_RPC_SEND_*); 0 or a negative code. */\n"
                  "static inline int %s__send_request(ag_rpc_call *c, const %s *m, unsigned flags)\n"
                  "{\n"
                  "    return ag_rpc_call_send_msg(c, &m->base, flags);\n"
                  "}\n\n",
                  mn->prefix, mn->in_c);
    pg_buf_printf(h,
                  "/* Client: the next response: 1 with *m (ag_rpc_msg_free it), 0 at the end\n"
                  " * (then ag_rpc_call_status), or a negative code. */\n"
                  "static inline int %s__recv_response(ag_rpc_call *c, %s **m)\n"
                  "{\n"
                  "    ProtobufCMessage *got = NULL;\n"
                  "    int rc = ag_rpc_call_recv_msg(c, &%s__descriptor, &got);\n"
                  "    *m = (%s *)got;\n"
                  "    return rc;\n"
                  "}\n\n",
                  mn->prefix, mn->out_c, mn->out_lower, mn->out_c);
    if (!m->client_streaming && !m->server_streaming)
        pg_buf_printf(h,
                      "/* Client: the whole unary call. Returns its status; *resp (ag_rpc_msg_free)\n"
                      " * on AG_RPC_OK; *message (may be NULL) a copy of the status message, for\n"
                      " * ag_free. */\n"
                      "static inline int %s__invoke(ag_rpc_channel *ch, const %s *req, "
                      "ag_deadline dl,\n"
                      "                             %s **resp, char **message)\n"
                      "{\n"
                      "    ProtobufCMessage *got = NULL;\n"
                      "    int st = ag_rpc_unary_msg(ch, &%s__method, &req->base, dl, &got, "
                      "message);\n"
                      "    *resp = (%s *)got;\n"
                      "    return st;\n"
                      "}\n\n",
                      mn->prefix, mn->in_c, mn->out_c, mn->prefix, mn->out_c);
    pg_buf_printf(h,
                  "/* Server: the next request: 1 with *m (ag_rpc_msg_free it), 0 once the\n"
                  " * client half-closed, or a negative code. */\n"
                  "static inline int %s__recv_request(ag_rpc_call *c, %s **m)\n"
                  "{\n"
                  "    ProtobufCMessage *got = NULL;\n"
                  "    int rc = ag_rpc_call_recv_msg(c, &%s__descriptor, &got);\n"
                  "    *m = (%s *)got;\n"
                  "    return rc;\n"
                  "}\n\n",
                  mn->prefix, mn->in_c, mn->in_lower, mn->in_c);
    pg_buf_printf(h,
                  "/* Server: sends a response (flags: AG_RPC_SEND_*); 0 or a negative code. */\n"
                  "static inline int %s__send_response(ag_rpc_call *c, const %s *m, "
                  "unsigned flags)\n"
                  "{\n"
                  "    return ag_rpc_call_send_msg(c, &m->base, flags);\n"
                  "}\n\n",
                  mn->prefix, mn->out_c);
}

static void gen_handlers(pg_buf *h, const pg_service *s, const snames *sn, mnames *const *mns)
{
    pg_buf_printf(h,
                  "/* The server side of %s: a handler per method, NULL for a method not\n"
                  " * served (its calls get UNIMPLEMENTED). A handler runs on a thread of its\n"
                  " * own and returns the call's status (AG_RPC_OK, or a code with\n"
                  " * ag_rpc_call_set_status_message). Unary and server-streaming handlers get\n"
                  " * the request (freed after they return); the others receive with\n"
                  " * __recv_request. Unary and client-streaming handlers send exactly one\n"
                  " * response. */\n"
                  "typedef struct %s_Handlers {\n",
                  sn->full, sn->c);
    for (size_t i = 0; i < s->nmethods; i++) {
        const mnames *mn = mns[i];
        if (mn->one_req)
            pg_buf_printf(h, "    int (*%s)(ag_rpc_call *c, const %s *req, void *ud); /* %s */\n",
                          mn->field, mn->in_c, mn->what);
        else
            pg_buf_printf(h, "    int (*%s)(ag_rpc_call *c, void *ud); /* %s */\n", mn->field,
                          mn->what);
    }
    pg_buf_printf(h,
                  "    void *ud; /* passed to every handler */\n"
                  "} %s_Handlers;\n\n"
                  "/* Registers h's non-NULL handlers on s (before ag_rpc_server_start); h must\n"
                  " * outlive the server. 0 or a negative code (ag_rpc_server_errmsg). */\n"
                  "int %s__register(ag_rpc_server *s, const %s_Handlers *h);\n\n",
                  sn->c, sn->lower, sn->c);
}

/* ---- the source --------------------------------------------------------------------------- */

static void gen_strings(pg_buf *c, const char *id, const char *what, size_t n,
                        const char *(*get)(const pg_file *, size_t), const pg_file *f)
{
    if (n == 0)
        return;
    pg_buf_printf(c, "static const char *const %s__%s[] = {\n", id, what);
    for (size_t i = 0; i < n; i++)
        pg_buf_printf(c, "    \"%s\",\n", get(f, i));
    pg_buf_puts(c, "};\n\n");
}

static const char *get_dep(const pg_file *f, size_t i)
{
    return f->deps[i];
}

static const char *get_symbol(const pg_file *f, size_t i)
{
    return f->symbols[i].name;
}

static const char *service_symbol(const pg_file *f, size_t i)
{
    size_t k = 0;
    for (size_t j = 0; j < f->nsymbols; j++)
        if (f->symbols[j].kind == PG_SYM_SERVICE && k++ == i)
            return f->symbols[j].name;
    return "";
}

static void gen_proto_file(pg_buf *c, const pg_file *f, const char *id)
{
    pg_buf_printf(c, "static const uint8_t %s__descriptor_bytes[%zu] = {", id,
                  f->descriptor_len ? f->descriptor_len : 1);
    for (size_t i = 0; i < f->descriptor_len; i++)
        pg_buf_printf(c, "%s0x%02x,", i % 12 ? " " : "\n    ", f->descriptor[i]);
    pg_buf_puts(c, "\n};\n\n");
    gen_strings(c, id, "deps", f->ndeps, get_dep, f);
    gen_strings(c, id, "symbols", f->nsymbols, get_symbol, f);
    gen_strings(c, id, "services", f->nservices, service_symbol, f);
    pg_buf_printf(c,
                  "const ag_rpc_proto_file %s__proto_file = {\n"
                  "    .name = \"%s\",\n"
                  "    .data = %s__descriptor_bytes,\n"
                  "    .len = %zu,\n",
                  id, f->name, id, f->descriptor_len);
    const char *what[3] = {"deps", "symbols", "services"};
    size_t n[3] = {f->ndeps, f->nsymbols, f->nservices};
    for (int i = 0; i < 3; i++) {
        if (n[i])
            pg_buf_printf(c, "    .%s = %s__%s,\n", what[i], id, what[i]);
        else
            pg_buf_printf(c, "    .%s = NULL,\n", what[i]);
        pg_buf_printf(c, "    .n%s = %zu,\n", what[i], n[i]);
    }
    pg_buf_puts(c, "};\n\n");
}

static void gen_service_code(pg_buf *c, const pg_service *s, const snames *sn,
                             mnames *const *mns)
{
    for (size_t i = 0; i < s->nmethods; i++) {
        const mnames *mn = mns[i];
        pg_buf_printf(c,
                      "const ag_rpc_method %s__method = {\n"
                      "    .path = \"%s\",\n"
                      "    .input = &%s__descriptor,\n"
                      "    .output = &%s__descriptor,\n"
                      "    .kind = %s,\n"
                      "};\n\n",
                      mn->prefix, mn->path, mn->in_lower, mn->out_lower, mn->kind);
        pg_buf_printf(c,
                      "static int %s__serve(ag_rpc_call *c, const ProtobufCMessage *req, void *ud)\n"
                      "{\n"
                      "    const %s_Handlers *h = ud;\n",
                      mn->prefix, sn->c);
        if (mn->one_req)
            pg_buf_printf(c, "    return h->%s(c, (const %s *)req, h->ud);\n}\n\n", mn->field,
                          mn->in_c);
        else
            pg_buf_printf(c, "    (void)req;\n    return h->%s(c, h->ud);\n}\n\n", mn->field);
    }
    pg_buf_printf(c, "int %s__register(ag_rpc_server *s, const %s_Handlers *h)\n{\n", sn->lower,
                  sn->c);
    if (s->nmethods == 0)
        pg_buf_puts(c, "    (void)s;\n    (void)h;\n");
    else
        pg_buf_puts(c, "    int rc;\n");
    for (size_t i = 0; i < s->nmethods; i++) {
        const mnames *mn = mns[i];
        pg_buf_printf(c,
                      "    if (h->%s) {\n"
                      "        rc = ag_rpc_server_register_method(s, &%s__method, %s__serve, "
                      "(void *)h, 0);\n"
                      "        if (rc < 0)\n"
                      "            return rc;\n"
                      "    }\n",
                      mn->field, mn->prefix, mn->prefix);
    }
    pg_buf_puts(c, "    return 0;\n}\n\n");
}

/* ---- a file --------------------------------------------------------------------------------- */

static int add_out(pg_output *o, const char *base, size_t blen, const char *ext, pg_buf *b)
{
    pg_buf_put(b, "", 1);
    if (b->failed)
        return gfail(o, "protoc-gen-argot: out of memory");
    pg_out_file *nf = realloc(o->files, (o->nfiles + 1) * sizeof(*o->files));
    size_t n = blen + strlen(ext) + 1;
    char *name = malloc(n);
    if (!nf || !name) {
        if (nf)
            o->files = nf;
        free(name);
        return gfail(o, "protoc-gen-argot: out of memory");
    }
    o->files = nf;
    snprintf(name, n, "%.*s%s", (int)blen, base, ext);
    nf[o->nfiles].name = name;
    nf[o->nfiles].content = (char *)b->p;
    nf[o->nfiles].len = b->len - 1;
    o->nfiles++;
    memset(b, 0, sizeof(*b));
    return 0;
}

static int gen_file(const pg_request *r, const pg_file *f, pg_output *o)
{
    char id[NAME_CAP], guard[NAME_CAP];
    file_id(f->name, id, sizeof(id));
    for (size_t i = 0; i <= strlen(id); i++)
        guard[i] = id[i] >= 'a' && id[i] <= 'z' ? (char)(id[i] - 'a' + 'A') : id[i];
    size_t blen = base_len(f->name);
    pg_buf h = {0}, c = {0};
    pg_buf_printf(&h,
                  "/*\n"
                  " * Generated by protoc-gen-argot from %s: do not edit.\n"
                  " *\n"
                  " * For each method M of a service S: S__M__method (its ag_rpc_method);\n"
                  " * client stubs S__M__start, __send_request, __recv_response (and\n"
                  " * __invoke for a unary method); server helpers __recv_request and\n"
                  " * __send_response; S_Handlers and S__register for serving S. And the\n"
                  " * file's reflection data, %s__proto_file. See argot/rpc.h.\n"
                  " */\n"
                  "#ifndef ARGOT_GEN_%s_ARGOT_H\n"
                  "#define ARGOT_GEN_%s_ARGOT_H\n\n"
                  "#include \"argot/rpc.h\"\n"
                  "#include \"%.*s.pb-c.h\"\n\n"
                  "/* %s for server reflection (ag_rpc_reflection_register). */\n"
                  "extern const ag_rpc_proto_file %s__proto_file;\n\n",
                  f->name, id, guard, guard, (int)blen, f->name, f->name, id);
    pg_buf_printf(&c,
                  "/* Generated by protoc-gen-argot from %s: do not edit. */\n"
                  "#include \"%.*s.argot.h\"\n\n",
                  f->name, (int)blen, f->name);
    gen_proto_file(&c, f, id);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < f->nservices; i++) {
        const pg_service *s = &f->services[i];
        snames sn;
        mnames **mns = calloc(s->nmethods ? s->nmethods : 1, sizeof(*mns));
        rc = mns ? service_names(f, s, &sn, o) : gfail(o, "protoc-gen-argot: out of memory");
        for (size_t j = 0; rc == 0 && j < s->nmethods; j++) {
            mns[j] = malloc(sizeof(**mns));
            rc = mns[j] ? method_names(r, f, &sn, &s->methods[j], mns[j], o)
                        : gfail(o, "protoc-gen-argot: out of memory");
            for (size_t k = 0; rc == 0 && k < j; k++)
                if (strcmp(mns[j]->field, mns[k]->field) == 0)
                    rc = gfail(o, "%s: methods %s and %s of %s have the same C name '%s'",
                               f->name, s->methods[k].name, s->methods[j].name, sn.full,
                               mns[j]->field);
        }
        if (rc == 0) {
            pg_buf_printf(&h, "/* ---- service %s ---- */\n\n", sn.full);
            for (size_t j = 0; j < s->nmethods; j++)
                gen_method_decls(&h, &s->methods[j], mns[j]);
            gen_handlers(&h, s, &sn, mns);
            gen_service_code(&c, s, &sn, mns);
        }
        for (size_t j = 0; mns && j < s->nmethods; j++)
            free(mns[j]);
        free(mns);
    }
    pg_buf_printf(&h, "#endif /* ARGOT_GEN_%s_ARGOT_H */\n", guard);
    if (rc == 0)
        rc = add_out(o, f->name, blen, ".argot.h", &h);
    if (rc == 0)
        rc = add_out(o, f->name, blen, ".argot.c", &c);
    pg_buf_free(&h);
    pg_buf_free(&c);
    return rc;
}

int pg_generate(const pg_request *r, pg_output *o)
{
    memset(o, 0, sizeof(*o));
    if (r->parameter && *r->parameter)
        return gfail(o, "protoc-gen-argot takes no parameters (got '%.100s')", r->parameter);
    for (size_t i = 0; i < r->ngenerate; i++) {
        const pg_file *f = find_file(r, r->to_generate[i]);
        if (!f)
            return gfail(o, "file_to_generate %.200s is not among the request's proto_file",
                         r->to_generate[i]);
        if (gen_file(r, f, o) < 0)
            return -1;
    }
    return 0;
}

void pg_output_free(pg_output *o)
{
    for (size_t i = 0; i < o->nfiles; i++) {
        free(o->files[i].name);
        free(o->files[i].content);
    }
    free(o->files);
    o->files = NULL;
    o->nfiles = 0;
}

int pg_response_encode(const pg_output *o, const char *error, uint8_t **out, size_t *len)
{
    pg_buf b = {0};
    if (error)
        pg_put_str_field(&b, 1, error);
    pg_put_uint_field(&b, 2, 1); /* FEATURE_PROTO3_OPTIONAL: fields do not concern us */
    for (size_t i = 0; !error && i < o->nfiles; i++) {
        pg_buf m = {0};
        pg_put_str_field(&m, 1, o->files[i].name);
        pg_put_bytes_field(&m, 15, o->files[i].content, o->files[i].len);
        if (m.failed)
            b.failed = true;
        pg_put_bytes_field(&b, 15, m.p, m.len);
        pg_buf_free(&m);
    }
    if (b.failed) {
        pg_buf_free(&b);
        return -1;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}
