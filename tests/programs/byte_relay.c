/* The floor for any path with relay processes in it: accepts one
 * connection at a time on LISTEN, connects to UPSTREAM and copies bytes
 * both ways with poll(2), read(2) and write(2), nothing else. The exec
 * benchmark chains two of them (TCP in, a Unix socket between them, TCP
 * out, as mirrord's intproxy and agent are chained) and compares mirrord
 * with that chain. With `splice`, the bytes move through a pipe per
 * direction with splice(2) instead, never entering user space: the floor
 * of a zero-copy relay.
 *
 * Usage: byte_relay LISTEN UPSTREAM [splice], each address `tcp:PORT`
 * (127.0.0.1) or `unix:@NAME` (an abstract Unix socket). Prints "ready"
 * once listening. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define BUF (256 * 1024)

/* Fills `addr` from a `tcp:PORT` or `unix:@NAME` spec; its length. */
static socklen_t address(const char *spec, struct sockaddr_storage *addr, int *family) {
    memset(addr, 0, sizeof *addr);
    if (strncmp(spec, "tcp:", 4) == 0) {
        struct sockaddr_in *in = (struct sockaddr_in *)addr;
        in->sin_family = AF_INET;
        in->sin_port = htons((unsigned short)atoi(spec + 4));
        in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        *family = AF_INET;
        return sizeof *in;
    }
    if (strncmp(spec, "unix:@", 6) == 0) {
        struct sockaddr_un *un = (struct sockaddr_un *)addr;
        size_t len = strlen(spec + 6);
        if (len + 1 > sizeof un->sun_path) return 0;
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path + 1, spec + 6, len); /* sun_path[0] = 0: abstract */
        *family = AF_UNIX;
        return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len);
    }
    return 0;
}

static void nodelay(int fd, int family) {
    int one = 1;
    if (family == AF_INET) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Copy through a pipe with splice(2) instead of a buffer (argument 3). */
static int use_splice;

/* One direction: bytes taken from `from` and not yet given to `to`, held
 * in `buf` or, with splice, in the pipe `pipe`. */
struct lane {
    int from, to;
    char buf[BUF];
    int pipe[2];
    size_t start, end;
    int eof; /* `from` is at its end: once drained, `to` is shut for writing */
};

/* Takes what `from` has (the lane is empty); its count, 0 at end, -1. */
static ssize_t take(struct lane *l) {
    if (use_splice)
        return splice(l->from, NULL, l->pipe[1], NULL, BUF, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    return read(l->from, l->buf, sizeof l->buf);
}

/* Gives up to the pending bytes to `to`; the count given, or -1. */
static ssize_t give(struct lane *l) {
    size_t pending = l->end - l->start;
    if (use_splice)
        return splice(l->pipe[0], NULL, l->to, NULL, pending, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    return write(l->to, l->buf + l->start, pending);
}

/* Copies both ways until both sides have ended (a half-close is passed
 * on) or one fails. Writes never block: a peer that does not take more
 * only stops its lane from reading (a relay that blocked on a write would
 * deadlock a full-duplex echo). */
static void pump(int a, int b) {
    static struct lane lanes[2];
    lanes[0] = (struct lane){.from = a, .to = b, .pipe = {-1, -1}};
    lanes[1] = (struct lane){.from = b, .to = a, .pipe = {-1, -1}};
    for (int i = 0; use_splice && i < 2; i++) {
        if (pipe2(lanes[i].pipe, O_NONBLOCK)) goto done;
        fcntl(lanes[i].pipe[1], F_SETPIPE_SZ, BUF);
    }
    fcntl(a, F_SETFL, fcntl(a, F_GETFL) | O_NONBLOCK);
    fcntl(b, F_SETFL, fcntl(b, F_GETFL) | O_NONBLOCK);
    for (;;) {
        struct pollfd fds[4];
        for (int i = 0; i < 2; i++) {
            struct lane *l = &lanes[i];
            int pending = l->end > l->start;
            fds[2 * i] = (struct pollfd){.fd = pending || l->eof ? -1 : l->from, .events = POLLIN};
            fds[2 * i + 1] = (struct pollfd){.fd = pending ? l->to : -1, .events = POLLOUT};
        }
        if (lanes[0].eof && lanes[1].eof && fds[1].fd < 0 && fds[3].fd < 0) goto done;
        if (poll(fds, 4, -1) < 0) goto done;
        for (int i = 0; i < 2; i++) {
            struct lane *l = &lanes[i];
            if (l->end == l->start && !l->eof && fds[2 * i].revents) {
                ssize_t n = take(l);
                if (n < 0 && errno != EAGAIN) goto done;
                if (n == 0) {
                    l->eof = 1;
                    shutdown(l->to, SHUT_WR);
                }
                if (n > 0) l->start = 0, l->end = (size_t)n;
            }
            while (l->end > l->start) {
                ssize_t w = give(l);
                if (w < 0 && errno == EAGAIN) break;
                if (w <= 0) goto done;
                l->start += (size_t)w;
            }
        }
    }
done:
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
            if (lanes[i].pipe[j] >= 0) close(lanes[i].pipe[j]);
}

int main(int argc, char **argv) {
    struct sockaddr_storage listen_addr, up_addr;
    int listen_family, up_family;
    if (argc < 3 || argc > 4 || (argc == 4 && strcmp(argv[3], "splice"))) {
        fprintf(stderr, "usage: byte_relay LISTEN UPSTREAM [splice] (tcp:PORT or unix:@NAME)\n");
        return 2;
    }
    use_splice = argc == 4;
    signal(SIGPIPE, SIG_IGN); /* a peer gone mid-write is an error, not death */
    socklen_t listen_len = address(argv[1], &listen_addr, &listen_family);
    socklen_t up_len = address(argv[2], &up_addr, &up_family);
    if (!listen_len || !up_len) {
        fprintf(stderr, "byte_relay: bad address\n");
        return 2;
    }
    int server = socket(listen_family, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (server < 0 || bind(server, (struct sockaddr *)&listen_addr, listen_len) ||
        listen(server, 16)) {
        perror("byte_relay: listen");
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        int client = accept(server, NULL, NULL);
        if (client < 0) continue;
        int upstream = socket(up_family, SOCK_STREAM, 0);
        if (upstream < 0 || connect(upstream, (struct sockaddr *)&up_addr, up_len)) {
            perror("byte_relay: connect");
            close(client);
            if (upstream >= 0) close(upstream);
            continue;
        }
        nodelay(client, listen_family);
        nodelay(upstream, up_family);
        pump(client, upstream);
        close(client);
        close(upstream);
    }
}
