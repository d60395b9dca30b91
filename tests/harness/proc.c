/*
 * Running real programs from tests: spawn, feed stdin, capture stdout and
 * stderr, enforce a timeout. Used by the integration tests to drive the
 * argot binary and its peers.
 */
#include <dirent.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

const char *ag_test_bin(const char *name)
{
    static char slots[8][512];
    static unsigned next;
    const char *dir = getenv("ARGOT_BIN_DIR");
    char *p = slots[next++ % 8];
    snprintf(p, sizeof(slots[0]), "%s/%s", dir ? dir : "build/bin", name);
    return p;
}

int ag_test_free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    CHECK(s >= 0);
    CHECK(bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    CHECK(getsockname(s, (struct sockaddr *)&sa, &len) == 0);
    close(s);
    return ntohs(sa.sin_port);
}

const char *ag_test_read_file(const char *path)
{
    static char slots[8][256 * 1024];
    static unsigned next;
    char *b = slots[next++ % 8];
    FILE *fp = fopen(path, "r");
    if (!fp)
        FAIL("cannot read %s", path);
    size_t n = fread(b, 1, sizeof(slots[0]), fp);
    fclose(fp);
    if (n == sizeof(slots[0]))
        FAIL("%s: larger than %zu bytes", path, sizeof(slots[0]) - 1);
    b[n] = '\0';
    return b;
}

const char *ag_test_prog(const char *name)
{
    static char slots[8][512];
    static unsigned next;
    const char *dir = getenv("ARGOT_BIN_DIR");
    char *p = slots[next++ % 8];
    snprintf(p, sizeof(slots[0]), "%s/../test/%s", dir ? dir : "build/bin", name);
    return p;
}

static int append(char **buf, size_t *len, const char *data, size_t n)
{
    char *nb = realloc(*buf, *len + n + 1);
    if (!nb)
        return -1;
    memcpy(nb + *len, data, n);
    *len += n;
    nb[*len] = '\0';
    *buf = nb;
    return 0;
}

int ag_test_run(ag_test_proc *p, const char *const argv[], const char *in, unsigned timeout_s)
{
    int pin[2], pout[2], perr[2];
    memset(p, 0, sizeof(*p));
    p->out = calloc(1, 1);
    p->err = calloc(1, 1);
    if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC) || pipe2(perr, O_CLOEXEC))
        FAIL("pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        FAIL("fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(pin[0], 0);
        dup2(pout[1], 1);
        dup2(perr[1], 2);
        execvp(argv[0], (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(pin[0]);
    close(pout[1]);
    close(perr[1]);
    signal(SIGPIPE, SIG_IGN);
    size_t in_len = in ? strlen(in) : 0, in_off = 0;
    int in_fd = pin[1];
    if (in_len == 0) {
        close(in_fd);
        in_fd = -1;
    }
    int open_fds = 2;
    uint64_t deadline = ag_now_ns() + (uint64_t)(timeout_s ? timeout_s : 60) * 1000000000u;
    while (open_fds > 0) {
        struct pollfd fds[3] = {{pout[0], POLLIN, 0}, {perr[0], POLLIN, 0},
                                {in_fd, POLLOUT, 0}};
        uint64_t now = ag_now_ns();
        if (now >= deadline) {
            kill(pid, SIGKILL);
            break;
        }
        int r = poll(fds, 3, (int)((deadline - now) / 1000000) + 1);
        if (r < 0 && errno != EINTR)
            FAIL("poll: %s", strerror(errno));
        char buf[65536];
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t n = read(fds[i].fd, buf, sizeof(buf));
            if (n > 0) {
                if (i == 0)
                    append(&p->out, &p->out_len, buf, (size_t)n);
                else
                    append(&p->err, &p->err_len, buf, (size_t)n);
            } else {
                close(fds[i].fd);
                if (i == 0)
                    pout[0] = -1;
                else
                    perr[0] = -1;
                open_fds--;
            }
        }
        if (fds[2].fd >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t n = write(in_fd, in + in_off, in_len - in_off);
            if (n > 0)
                in_off += (size_t)n;
            if (n < 0 || in_off == in_len) {
                close(in_fd);
                in_fd = -1;
            }
        }
    }
    if (pout[0] >= 0)
        close(pout[0]);
    if (perr[0] >= 0)
        close(perr[0]);
    if (in_fd >= 0)
        close(in_fd);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    p->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return p->status;
}

void ag_test_proc_cleanup(ag_test_proc *p)
{
    free(p->out);
    free(p->err);
    p->out = p->err = NULL;
}

pid_t ag_test_spawn(const char *const argv[], int *out_fd)
{
    int po[2];
    if (pipe2(po, O_CLOEXEC) != 0)
        FAIL("pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        FAIL("fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(po[1], 1);
        execvp(argv[0], (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(po[1]);
    *out_fd = po[0];
    return pid;
}

ssize_t ag_test_read_line(int fd, char *buf, size_t cap, unsigned timeout_s)
{
    size_t n = 0;
    uint64_t deadline = ag_now_ns() + (uint64_t)timeout_s * 1000000000u;
    while (n + 1 < cap) {
        uint64_t now = ag_now_ns();
        if (now >= deadline)
            return -1;
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, (int)((deadline - now) / 1000000) + 1) <= 0)
            continue;
        char ch;
        ssize_t r = read(fd, &ch, 1);
        if (r <= 0)
            return -1;
        if (ch == '\n')
            break;
        buf[n++] = ch;
    }
    buf[n] = '\0';
    return (ssize_t)n;
}

int ag_test_wait(pid_t pid, unsigned timeout_s)
{
    int status;
    for (unsigned i = 0; i < timeout_s * 100; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        ag_sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int ag_test_stop(pid_t pid)
{
    int status;
    kill(pid, SIGTERM);
    for (int i = 0; i < 200; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        ag_sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

char *ag_test_http(int port, const char *method, const char *path, const char *body)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return NULL;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return NULL;
    }
    size_t blen = body ? strlen(body) : 0;
    char head[1024];
    int n = snprintf(head, sizeof(head),
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     method, path, blen);
    if (write(fd, head, (size_t)n) != n || (blen && write(fd, body, blen) != (ssize_t)blen)) {
        close(fd);
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    for (;;) {
        if (len + 4096 > cap) {
            cap *= 2;
            char *p = realloc(out, cap);
            if (!p)
                break;
            out = p;
        }
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, 10000) <= 0)
            break;
        ssize_t r = read(fd, out + len, cap - len - 1);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    out[len] = '\0';
    close(fd);
    return out;
}

int ag_test_count_files(const char *prefix)
{
    DIR *d = opendir(ag_test_tmpdir());
    int n = 0;
    if (!d)
        FAIL("cannot list %s", ag_test_tmpdir());
    for (struct dirent *e; (e = readdir(d));)
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

int ag_test_count_lines(const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", ag_test_tmpdir(), name);
    FILE *f = fopen(path, "r");
    int n = 0, c;
    if (!f)
        return 0;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}
