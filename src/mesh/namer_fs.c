/*
 * The fs namer: "/NAME[/...]" is bound to the endpoints listed in the file
 * rootDir/NAME, one "host port [weight]" per line (ag__fs_parse), kept
 * current through inotify (libuv's uv_fs_event on rootDir, which gives the
 * name of the file each event is about).
 *
 * State machine of a binding (its first state comes from a synchronous read
 * when it is bound; files are small):
 *   file readable and parsed       -> BOUND with its endpoints
 *   no file (ENOENT)               -> NEG "no file disco/users"
 *   unparsable / unreadable        -> stays as it was if BOUND (the last good
 *                                     endpoints), else FAILED with the error;
 *                                     the error is logged and counted once
 *                                     per reload, and shown in the JSON
 *   a name that is no file name    -> NEG for good
 *
 * Changes. An event marks the bindings of the file it names dirty and
 * (re)starts a 50 ms timer; when the timer fires, the dirty bindings are
 * re-read. So a burst of writes is one reload, 50 ms after its last event;
 * a file written without pause for longer than DEBOUNCE_MAX_MS is still
 * re-read every DEBOUNCE_MAX_MS. An event without a file name (the kernel's
 * queue overflowed) and events on names starting with ".." (Kubernetes'
 * atomic writer swaps a "..data" symlink that every file points through)
 * mark every binding. Events on other files are ignored. Nothing is polled:
 * an idle namer is one inotify descriptor in the loop's epoll set. rootDir
 * itself must stay: if it is removed, its files read as missing (NEG) and
 * a directory made again under its name is not watched.
 *
 * Loop thread only.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "namer_int.h"

#define DEBOUNCE_MS     50
#define DEBOUNCE_MAX_MS 1000

typedef struct fs_impl {
    char root[PATH_MAX]; /* rootDir as opened (relative to the config file's dir) */
    char *root_shown;    /* rootDir as written in the config, for messages */
    uv_fs_event_t event; /* data: the namer */
    uv_timer_t debounce; /* data: the namer */
    bool event_init;     /* event was initialized (so must be closed) */
    bool timer_init;
    bool all_dirty;          /* reload every binding when the timer fires */
    uint64_t first_event_ms; /* ag_now_ms() of the first event since the last reload */
} fs_impl;

typedef struct fs_bind {
    bool valid;              /* the residual names a file */
    bool dirty;              /* re-read when the debounce timer fires */
    char name[NAME_MAX + 1]; /* the file's name in rootDir */
} fs_bind;

/* ------------------------------------------------------------------------ */
/* The file format                                                           */
/* ------------------------------------------------------------------------ */

/* A token for a message: at most 40 bytes, anything unprintable as '?'. */
static void show_tok(char *dst, size_t cap, const char *s, size_t len)
{
    size_t n = AG_MIN(len, AG_MIN(cap - 1, (size_t)40));
    for (size_t i = 0; i < n; i++)
        dst[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    dst[n] = '\0';
}

typedef struct parse_state {
    const char *name; /* for messages */
    size_t line;      /* 1-based */
    ag__addr_at *v;
    size_t n;
    size_t cap;
    ag_errbuf *err;
} parse_state;

/* Parses one line [p, end) (without its line ending) and appends its
 * endpoint, if any, to ps->v. */
static int parse_line(parse_state *ps, const char *p, const char *end)
{
    const char *tok[4];
    size_t len[4];
    int nt = 0;
    while (p < end) {
        if (*p == ' ' || *p == '\t') {
            p++;
            continue;
        }
        if (*p == '#')
            break;
        const char *s = p;
        while (p < end && *p != ' ' && *p != '\t')
            p++;
        if (nt == 3)
            return ag_errbuf_set(ps->err, AG_E_INVAL,
                                 "%s:%zu: too many fields (want 'host port [weight]')", ps->name,
                                 ps->line);
        tok[nt] = s;
        len[nt++] = (size_t)(p - s);
    }
    if (nt == 0)
        return 0;
    char shown[48];
    if (!ag__host_valid(tok[0], len[0])) {
        show_tok(shown, sizeof(shown), tok[0], len[0]);
        return ag_errbuf_set(ps->err, AG_E_INVAL, "%s:%zu: bad host '%s'", ps->name, ps->line,
                             shown);
    }
    if (nt < 2)
        return ag_errbuf_set(ps->err, AG_E_INVAL, "%s:%zu: no port (want 'host port [weight]')",
                             ps->name, ps->line);
    uint16_t port = ag__port_parse(tok[1], len[1]);
    if (!port) {
        show_tok(shown, sizeof(shown), tok[1], len[1]);
        return ag_errbuf_set(ps->err, AG_E_INVAL, "%s:%zu: bad port '%s' (want 1..65535)", ps->name,
                             ps->line, shown);
    }
    double w = nt == 3 ? ag__weight_parse(tok[2], len[2]) : 1;
    if (w <= 0) {
        show_tok(shown, sizeof(shown), tok[2], len[2]);
        return ag_errbuf_set(ps->err, AG_E_INVAL,
                             "%s:%zu: bad weight '%s' (want a decimal number > 0)", ps->name,
                             ps->line, shown);
    }
    if (ps->n == AG__NAMER_ADDRS_MAX)
        return ag_errbuf_set(ps->err, AG_E_TOO_LARGE, "%s:%zu: more than %d endpoints", ps->name,
                             ps->line, AG__NAMER_ADDRS_MAX);
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 8;
        ag__addr_at *v = ag_reallocarray(ps->v, cap, sizeof(*v));
        if (!v)
            return ag_errbuf_set(ps->err, AG_E_NOMEM, "%s: out of memory", ps->name);
        ps->v = v;
        ps->cap = cap;
    }
    ag__addr_at *a = &ps->v[ps->n];
    a->a.host = ag_strndup(tok[0], len[0]);
    if (!a->a.host)
        return ag_errbuf_set(ps->err, AG_E_NOMEM, "%s: out of memory", ps->name);
    a->a.port = port;
    a->a.weight = w;
    a->at = ps->line;
    ps->n++;
    return 0;
}

int ag__fs_parse(const char *text, size_t len, const char *name, ag__addr **out, size_t *n,
                 ag_errbuf *err)
{
    parse_state ps = {.name = name, .err = err};
    const char *p = text, *end = text + len;
    int rc = 0;
    *out = NULL;
    *n = 0;
    while (p < end && rc == 0) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        const char *le = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
        ps.line++;
        if (memchr(p, '\0', (size_t)(le - p)) || memchr(p, '\r', (size_t)(le - p)))
            rc = ag_errbuf_set(err, AG_E_INVAL, "%s:%zu: bad character (NUL or CR) in line", name,
                               ps.line);
        else
            rc = parse_line(&ps, p, le);
        p = eol < end ? eol + 1 : end;
    }
    size_t dup = rc == 0 ? ag__addrs_sort_at(ps.v, ps.n) : 0;
    if (dup) {
        const ag__addr_at *d = &ps.v[dup];
        rc =
            ag_errbuf_set(err, AG_E_INVAL, "%s:%zu: duplicate endpoint '%s %u' (first on line %zu)",
                          name, d->at, d->a.host, (unsigned)d->a.port, ps.v[dup - 1].at);
    }
    ag__addr *a = NULL;
    if (rc == 0 && ps.n > 0) {
        a = ag_calloc(ps.n, sizeof(*a));
        if (!a)
            rc = ag_errbuf_set(err, AG_E_NOMEM, "%s: out of memory", name);
    }
    for (size_t i = 0; i < ps.n; i++) {
        if (rc == 0)
            a[i] = ps.v[i].a;
        else
            ag_free(ps.v[i].a.host);
    }
    ag_free(ps.v);
    if (rc < 0)
        return rc;
    *out = a;
    *n = ps.n;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Reading a binding's file                                                  */
/* ------------------------------------------------------------------------ */

/* Reads path whole into buf (at most AG__NAMER_FILE_MAX bytes). 0, a
 * negative errno, or -EFBIG. */
static int read_file(const char *path, ag_buf *buf)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return -errno;
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0)
        rc = -errno;
    else if (!S_ISREG(st.st_mode))
        rc = -EINVAL;
    while (rc == 0) {
        char chunk[16384];
        ssize_t r = read(fd, chunk, sizeof(chunk));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            rc = -errno;
        else if (r == 0)
            break;
        else if (ag_buf_append(buf, chunk, (size_t)r) < 0)
            rc = buf->len + (size_t)r > buf->max ? -EFBIG : -ENOMEM;
    }
    close(fd);
    return rc;
}

/* Re-reads b's file and moves b to what it says (see the file comment).
 * 0 or AG_E_NOMEM. The last thing it does is ag__bnd_set, whose watchers
 * may release b or free the namer. */
static int fs_reload(ag__namer *n, ag__bnd *b)
{
    fs_impl *fi = n->impl;
    fs_bind *fb = b->impl;
    char path[PATH_MAX + NAME_MAX + 2], shown[PATH_MAX + NAME_MAX + 2];
    snprintf(path, sizeof(path), "%s/%s", fi->root, fb->name);
    snprintf(shown, sizeof(shown), "%s/%s", fi->root_shown, fb->name);
    ag_buf buf;
    ag_buf_init(&buf, AG__NAMER_FILE_MAX);
    n->stats.reloads++;
    int rc = read_file(path, &buf);
    if (rc == -ENOENT || rc == -ENOTDIR) {
        ag_buf_cleanup(&buf);
        ag__bnd_set_error(b, NULL);
        char why[sizeof(shown) + 16];
        snprintf(why, sizeof(why), "no file %s", shown);
        return ag__bnd_set(b, AG__BIND_NEG, NULL, 0, why);
    }
    if (rc == -ENOMEM) {
        ag_buf_cleanup(&buf);
        return AG_E_NOMEM;
    }
    ag_errbuf err;
    ag_errbuf_clear(&err);
    ag__addr *addrs = NULL;
    size_t na = 0;
    if (rc == -EFBIG)
        ag_errbuf_set(&err, AG_E_TOO_LARGE, "%s: larger than %d bytes", shown, AG__NAMER_FILE_MAX);
    else if (rc == -EINVAL)
        ag_errbuf_set(&err, AG_E_INVAL, "%s: not a regular file", shown);
    else if (rc < 0)
        ag_errbuf_set(&err, AG_E_IO, "%s: %s", shown, strerror(-rc));
    else
        rc =
            ag__fs_parse(buf.data ? (const char *)buf.data : "", buf.len, shown, &addrs, &na, &err);
    ag_buf_cleanup(&buf);
    if (rc == AG_E_NOMEM)
        return rc;
    if (rc == 0) {
        ag__bnd_set_error(b, NULL);
        return ag__bnd_set(b, AG__BIND_BOUND, addrs, na, NULL);
    }
    n->stats.errors++;
    AG_LOG(AG_LOG_WARN, "mesh", "namer_fs_error id=%s kept=%s error=\"%s\"", b->pub.id,
           b->pub.state == AG__BIND_BOUND ? "last_good" : "none", err.msg);
    ag__bnd_set_error(b, err.msg);
    if (b->pub.state == AG__BIND_BOUND)
        return 0;
    return ag__bnd_set(b, AG__BIND_FAILED, NULL, 0, err.msg);
}

/* ------------------------------------------------------------------------ */
/* Events                                                                    */
/* ------------------------------------------------------------------------ */

/* The debounce timer: re-reads every dirty binding. A watcher may unbind
 * others or free the namer, so the list is searched afresh after each
 * reload (it is short), and the loop stops if the namer was freed. */
static void on_debounce(uv_timer_t *t)
{
    ag__namer *n = t->data;
    fs_impl *fi = n->impl;
    if (fi->all_dirty) {
        for (ag__bnd *b = n->bindings; b; b = b->next)
            ((fs_bind *)b->impl)->dirty = true;
        fi->all_dirty = false;
    }
    fi->first_event_ms = 0;
    while (!n->freed) {
        ag__bnd *b = n->bindings;
        while (b && !((fs_bind *)b->impl)->dirty)
            b = b->next;
        if (!b)
            break;
        ((fs_bind *)b->impl)->dirty = false;
        if (fs_reload(n, b) < 0)
            AG_LOG(AG_LOG_ERROR, "mesh", "namer_fs_error id=%s error=\"out of memory\"", b->pub.id);
    }
}

static void on_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    ag__namer *n = h->data;
    fs_impl *fi = n->impl;
    bool marked = false;
    (void)events;
    if (status < 0 || !filename || strncmp(filename, "..", 2) == 0) {
        fi->all_dirty = true;
        marked = n->bindings != NULL;
    } else {
        for (ag__bnd *b = n->bindings; b; b = b->next) {
            fs_bind *fb = b->impl;
            if (fb->valid && strcmp(fb->name, filename) == 0) {
                fb->dirty = true;
                marked = true;
            }
        }
    }
    if (!marked)
        return;
    uint64_t now = ag_now_ms();
    if (fi->first_event_ms == 0)
        fi->first_event_ms = now;
    /* Restart the timer (debounce), unless events have kept it from firing
     * for DEBOUNCE_MAX_MS already: then let it fire as scheduled. */
    if (!uv_is_active((uv_handle_t *)&fi->debounce) || now - fi->first_event_ms < DEBOUNCE_MAX_MS)
        uv_timer_start(&fi->debounce, on_debounce, DEBOUNCE_MS, 0);
}

/* ------------------------------------------------------------------------ */
/* The kind's hooks                                                          */
/* ------------------------------------------------------------------------ */

int ag__namer_fs_init(ag__namer *n, ag_config *c, const ag_cnode *node)
{
    fs_impl *fi = ag_calloc(1, sizeof(*fi));
    if (!fi)
        return AG_E_NOMEM;
    n->impl = fi;
    const char *shown = NULL;
    int rc = ag_config_get_str(c, node, "rootDir", AG_REQUIRED, &shown);
    if (rc == 0)
        rc = ag_config_get_path(c, node, "rootDir", AG_REQUIRED, fi->root, sizeof(fi->root));
    if (rc < 0)
        return rc;
    const ag_cnode *at = ag_cnode_get(node, "rootDir");
    struct stat st;
    if (stat(fi->root, &st) < 0)
        return ag_config_errorf(c, at, AG_E_CONFIG_VALUE, "rootDir '%s': %s", shown,
                                errno == ENOENT ? "no such directory" : strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return ag_config_errorf(c, at, AG_E_CONFIG_VALUE, "rootDir '%s': not a directory", shown);
    fi->root_shown = ag_strdup(shown);
    if (!fi->root_shown)
        return AG_E_NOMEM;
    rc = uv_timer_init(n->loop, &fi->debounce);
    if (rc < 0)
        return ag_config_errorf(c, at, AG_E_SYS, "rootDir '%s': %s", shown, uv_strerror(rc));
    fi->debounce.data = n;
    fi->timer_init = true;
    rc = uv_fs_event_init(n->loop, &fi->event);
    if (rc == 0) {
        fi->event.data = n;
        fi->event_init = true;
        rc = uv_fs_event_start(&fi->event, on_event, fi->root, 0);
    }
    if (rc < 0)
        return ag_config_errorf(c, at, AG_E_SYS, "rootDir '%s': cannot watch it: %s", shown,
                                uv_strerror(rc));
    return 0;
}

static int fs_bind_init(ag__namer *n, ag__bnd *b)
{
    fs_bind *fb = ag_calloc(1, sizeof(*fb));
    if (!fb)
        return AG_E_NOMEM;
    b->impl = fb;
    ag_slice seg;
    int ns = ag__path_segments(b->residual, &seg, 1);
    if (ns < 1 || seg.len > NAME_MAX || ag_slice_eq_str(seg, ".") || ag_slice_eq_str(seg, ".."))
        return ag__bnd_set(b, AG__BIND_NEG, NULL, 0, "not a file name (want /NAME)");
    memcpy(fb->name, seg.ptr, seg.len);
    fb->name[seg.len] = '\0';
    fb->valid = true;
    return fs_reload(n, b);
}

static void fs_bind_release(ag__namer *n, ag__bnd *b)
{
    (void)n;
    ag_free(b->impl);
    b->impl = NULL;
}

static void fs_stop(ag__namer *n)
{
    fs_impl *fi = n->impl;
    if (!fi)
        return;
    if (fi->event_init) {
        n->closing++;
        uv_close((uv_handle_t *)&fi->event, ag__namer_close_cb);
    }
    if (fi->timer_init) {
        n->closing++;
        uv_close((uv_handle_t *)&fi->debounce, ag__namer_close_cb);
    }
}

static void fs_destroy(ag__namer *n)
{
    fs_impl *fi = n->impl;
    if (!fi)
        return;
    ag_free(fi->root_shown);
    ag_free(fi);
    n->impl = NULL;
}

const ag__namer_ops ag__namer_fs_ops = {
    .kind = "fs",
    .bind_init = fs_bind_init,
    .bind_release = fs_bind_release,
    .stop = fs_stop,
    .destroy = fs_destroy,
};
