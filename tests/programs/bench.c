/* Micro-benchmarks for `mirrord-bench`: each mode prints one number, the
 * seconds its measured loop took (setup excluded). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

/* stat + open + read + close of one file, n times. */
static double file_loop(const char *path, long n) {
    char buf[4096];
    struct stat st;
    double start = now();
    for (long i = 0; i < n; i++) {
        if (stat(path, &st) != 0) die("stat");
        int fd = open(path, O_RDONLY);
        if (fd < 0) die("open");
        if (read(fd, buf, sizeof buf) < 0) die("read");
        close(fd);
    }
    return now() - start;
}

/* stat of one file, n times: one syscall, the cheapest the syscall path
 * stops. */
static double stat_loop(const char *path, long n) {
    struct stat st;
    double start = now();
    for (long i = 0; i < n; i++) {
        if (stat(path, &st) != 0) die("stat");
    }
    return now() - start;
}

/* open + read + close of one file, n times: the latency of a small read. */
static double read_loop(const char *path, long n) {
    char buf[4096];
    double start = now();
    for (long i = 0; i < n; i++) {
        int fd = open(path, O_RDONLY);
        if (fd < 0) die("open");
        if (read(fd, buf, sizeof buf) <= 0) die("read");
        close(fd);
    }
    return now() - start;
}

/* n writes of 4 KiB, then close (which waits for pipelined writes). */
static double write_blocks(const char *path, long n) {
    char block[4096];
    memset(block, 'x', sizeof block);
    double start = now();
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die("open for write");
    for (long i = 0; i < n; i++)
        if (write(fd, block, sizeof block) != sizeof block) die("write");
    if (close(fd) != 0) die("close");
    return now() - start;
}

static int connect_to(const char *ip, int port) {
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, ip, &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* n one-byte round trips to an echo server. */
static double round_trips(const char *ip, int port, long n) {
    int fd = connect_to(ip, port);
    char c = 'x';
    double start = now();
    for (long i = 0; i < n; i++) {
        if (write(fd, &c, 1) != 1 || read(fd, &c, 1) != 1) die("round trip");
    }
    double t = now() - start;
    close(fd);
    return t;
}

/* n connections to an echo server, each: connect, one one-byte round
   trip, close (a client that opens a connection per request). */
static double connections(const char *ip, int port, long n) {
    char c = 'x';
    double start = now();
    for (long i = 0; i < n; i++) {
        int fd = connect_to(ip, port);
        if (write(fd, &c, 1) != 1 || read(fd, &c, 1) != 1) die("connection");
        close(fd);
    }
    return now() - start;
}

/* n one-byte datagram round trips on an unconnected UDP socket: sendto
   the echo server, recvfrom its answer (with the source address). */
static double datagrams(const char *ip, int port, long n) {
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)}, from;
    inet_pton(AF_INET, ip, &to.sin_addr);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char c = 'x';
    double start = now();
    for (long i = 0; i < n; i++) {
        socklen_t len = sizeof from;
        if (sendto(fd, &c, 1, 0, (struct sockaddr *)&to, sizeof to) != 1 ||
            recvfrom(fd, &c, 1, 0, (struct sockaddr *)&from, &len) != 1)
            die("datagram round trip");
    }
    double t = now() - start;
    close(fd);
    return t;
}

/* What glibc's resolver does on its connected UDP socket, n times: two
   datagrams out with one sendmmsg without addresses, both back with one
   recvmmsg, on the local loopback. */
static double connected_mmsg(const char *ip, long n) {
    struct sockaddr_in addr = {.sin_family = AF_INET};
    socklen_t len = sizeof addr;
    inet_pton(AF_INET, ip, &addr.sin_addr);
    int rx = socket(AF_INET, SOCK_DGRAM, 0), tx = socket(AF_INET, SOCK_DGRAM, 0);
    if (bind(rx, (struct sockaddr *)&addr, sizeof addr) || getsockname(rx, (struct sockaddr *)&addr, &len) ||
        connect(tx, (struct sockaddr *)&addr, sizeof addr))
        die("mmsg sockets");
    char out[2][8] = {"query-a", "query-b"}, in[2][8];
    struct iovec oiov[2] = {{out[0], 8}, {out[1], 8}}, iiov[2] = {{in[0], 8}, {in[1], 8}};
    struct mmsghdr send_msgs[2], recv_msgs[2];
    memset(send_msgs, 0, sizeof send_msgs);
    memset(recv_msgs, 0, sizeof recv_msgs);
    for (int i = 0; i < 2; i++) {
        send_msgs[i].msg_hdr.msg_iov = &oiov[i];
        send_msgs[i].msg_hdr.msg_iovlen = 1;
        recv_msgs[i].msg_hdr.msg_iov = &iiov[i];
        recv_msgs[i].msg_hdr.msg_iovlen = 1;
    }
    double start = now();
    for (long i = 0; i < n; i++) {
        if (sendmmsg(tx, send_msgs, 2, 0) != 2) die("sendmmsg");
        for (int got = 0; got < 2;) {
            int r = recvmmsg(rx, recv_msgs + got, 2 - got, MSG_WAITFORONE, NULL);
            if (r <= 0) die("recvmmsg");
            got += r;
        }
    }
    double t = now() - start;
    close(rx);
    close(tx);
    return t;
}

struct sender { int fd; long bytes; };

static void *send_all(void *arg) {
    struct sender *s = arg;
    static char chunk[65536];
    long left = s->bytes;
    while (left > 0) {
        ssize_t n = write(s->fd, chunk, left < (long)sizeof chunk ? left : (long)sizeof chunk);
        if (n <= 0) die("send");
        left -= n;
    }
    shutdown(s->fd, SHUT_WR);
    return NULL;
}

/* Send `mb` MiB to an echo server and read them all back. */
static double bulk(const char *ip, int port, long mb) {
    int fd = connect_to(ip, port);
    struct sender s = {fd, mb << 20};
    static char buf[65536];
    double start = now();
    pthread_t t;
    pthread_create(&t, NULL, send_all, &s);
    long got = 0;
    while (got < s.bytes) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) die("receive");
        got += n;
    }
    pthread_join(t, NULL);
    close(fd);
    return now() - start;
}

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "now")) {
        /* When the program started, on the clock the caller reads too. */
        printf("%.6f\n", now());
        return 0;
    }
    if (argc < 4) {
        fprintf(stderr, "usage: bench files PATH N | stats PATH N | mmsg IP N | reads PATH N | write PATH N | rtt IP PORT N | connects IP PORT N | udp IP PORT N | bulk IP PORT MB\n");
        return 2;
    }
    double t;
    if (!strcmp(argv[1], "files")) t = file_loop(argv[2], atol(argv[3]));
    else if (!strcmp(argv[1], "stats")) t = stat_loop(argv[2], atol(argv[3]));
    else if (!strcmp(argv[1], "mmsg")) t = connected_mmsg(argv[2], atol(argv[3]));
    else if (!strcmp(argv[1], "reads")) t = read_loop(argv[2], atol(argv[3]));
    else if (!strcmp(argv[1], "write")) t = write_blocks(argv[2], atol(argv[3]));
    else if (!strcmp(argv[1], "rtt") && argc > 4) t = round_trips(argv[2], atoi(argv[3]), atol(argv[4]));
    else if (!strcmp(argv[1], "connects") && argc > 4) t = connections(argv[2], atoi(argv[3]), atol(argv[4]));
    else if (!strcmp(argv[1], "udp") && argc > 4) t = datagrams(argv[2], atoi(argv[3]), atol(argv[4]));
    else if (!strcmp(argv[1], "bulk") && argc > 4) t = bulk(argv[2], atoi(argv[3]), atol(argv[4]));
    else return 2;
    printf("%.6f\n", t);
    return 0;
}
