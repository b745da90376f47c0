/* Probe of what a C program sees; fork+execs itself as a child, or with
   `--exec PATH` the program at PATH (given the "child." prefix). Prints
   its pid and whether the mirrord layer is loaded in it. */
#define _GNU_SOURCE /* sendmmsg, recvmmsg */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *prefix = "";

static void err(const char *key) {
    printf("%s%s=ERR:%s\n", prefix, key, errno == ENOENT ? "ENOENT" : strerror(errno));
}

static int resolve(struct sockaddr_in *sa, int port) {
    struct addrinfo hints = {.ai_family = AF_INET}, *res;
    if (getaddrinfo("backend.pod.test", NULL, &hints, &res) != 0) return -1;
    memcpy(sa, res->ai_addr, sizeof *sa);
    sa->sin_port = htons(port);
    freeaddrinfo(res);
    return 0;
}

static void echo(const char *key, int type, int port, const char *ping) {
    struct sockaddr_in sa;
    char buf[64] = {0};
    struct timeval tv = {.tv_sec = 10};
    int fd = socket(AF_INET, type, 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (resolve(&sa, port) || connect(fd, (struct sockaddr *)&sa, sizeof sa) ||
        send(fd, ping, strlen(ping), 0) < 0 || recv(fd, buf, sizeof buf - 1, 0) < 0) {
        err(key);
    } else {
        printf("%s%s=%s\n", prefix, key, buf);
    }
    close(fd);
}

/* Unconnected UDP: sendto and recvfrom on a socket that never connects;
   the reply's source is printed too. */
static void datagram(const char *key, int port, const char *ping) {
    struct sockaddr_in sa, from;
    socklen_t from_len = sizeof from;
    char buf[64] = {0};
    struct timeval tv = {.tv_sec = 10};
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (resolve(&sa, port) ||
        sendto(fd, ping, strlen(ping), 0, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        recvfrom(fd, buf, sizeof buf - 1, 0, (struct sockaddr *)&from, &from_len) < 0) {
        err(key);
    } else {
        printf("%s%s.from=%s:%d\n", prefix, key, inet_ntoa(from.sin_addr), ntohs(from.sin_port));
        printf("%s%s=%s\n", prefix, key, buf);
    }
    close(fd);
}

/* Unconnected UDP through sendmsg and recvmsg: the address in the msghdr,
   the data across two iovecs. */
static void datagram_msg(const char *key, int port, const char *ping) {
    struct sockaddr_in sa, from;
    char head[4] = {0}, tail[60] = {0}, buf[64] = {0};
    struct timeval tv = {.tv_sec = 10};
    size_t half = strlen(ping) / 2;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (resolve(&sa, port)) { err(key); close(fd); return; }
    struct iovec out[2] = {{(void *)ping, half}, {(void *)(ping + half), strlen(ping) - half}};
    struct msghdr send_msg = {.msg_name = &sa, .msg_namelen = sizeof sa, .msg_iov = out, .msg_iovlen = 2};
    struct iovec in[2] = {{head, sizeof head}, {tail, sizeof tail - 1}};
    struct msghdr recv_msg = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = in, .msg_iovlen = 2};
    ssize_t got;
    if (sendmsg(fd, &send_msg, 0) < 0 || (got = recvmsg(fd, &recv_msg, 0)) < 0) {
        err(key);
    } else {
        memcpy(buf, head, got < 4 ? got : 4);
        if (got > 4) memcpy(buf + 4, tail, got - 4);
        printf("%s%s.from=%s:%d\n", prefix, key, inet_ntoa(from.sin_addr), ntohs(from.sin_port));
        printf("%s%s=%s\n", prefix, key, buf);
    }
    close(fd);
}

/* Two datagrams out with one sendmmsg (each naming the service), back with
   recvmmsg: the echoes' payloads and the first one's source. */
static void datagram_mmsg(const char *key, int port, const char *ping) {
    struct sockaddr_in sa, from[2];
    char first[64] = {0}, second[64] = {0}, pings[2][64];
    struct timeval tv = {.tv_sec = 10};
    int fd = socket(AF_INET, SOCK_DGRAM, 0), got = 0;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (resolve(&sa, port)) { err(key); close(fd); return; }
    snprintf(pings[0], sizeof pings[0], "%s-1", ping);
    snprintf(pings[1], sizeof pings[1], "%s-2", ping);
    struct iovec out[2] = {{pings[0], strlen(pings[0])}, {pings[1], strlen(pings[1])}};
    struct iovec in[2] = {{first, sizeof first - 1}, {second, sizeof second - 1}};
    struct mmsghdr send_msgs[2], recv_msgs[2];
    memset(send_msgs, 0, sizeof send_msgs);
    memset(recv_msgs, 0, sizeof recv_msgs);
    for (int i = 0; i < 2; i++) {
        send_msgs[i].msg_hdr = (struct msghdr){.msg_name = &sa, .msg_namelen = sizeof sa, .msg_iov = &out[i], .msg_iovlen = 1};
        recv_msgs[i].msg_hdr = (struct msghdr){.msg_name = &from[i], .msg_namelen = sizeof from[i], .msg_iov = &in[i], .msg_iovlen = 1};
    }
    if (sendmmsg(fd, send_msgs, 2, 0) != 2) { err(key); close(fd); return; }
    /* The echoes may come one by one: at least one per call. */
    while (got < 2) {
        int n = recvmmsg(fd, recv_msgs + got, 2 - got, MSG_WAITFORONE, NULL);
        if (n <= 0) { err(key); close(fd); return; }
        got += n;
    }
    printf("%s%s.from=%s:%d\n", prefix, key, inet_ntoa(from[0].sin_addr), ntohs(from[0].sin_port));
    printf("%s%s=%s %s\n", prefix, key, first, second);
    close(fd);
}

/* The fd links of a remote file and directory: readlink names the pod's
   path, and the file opened again through /dev/fd reads the pod's content. */
static void fdlinks(void) {
    char link[64], target[256] = {0}, line[256] = {0};
    int fd = open("/app/config/message.txt", O_RDONLY);
    if (fd < 0) { err("fdlink"); return; }
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    if (readlink(link, target, sizeof target - 1) < 0) err("fdlink"); else printf("%sfdlink=%s\n", prefix, target);
    snprintf(link, sizeof link, "/dev/fd/%d", fd);
    FILE *f = fopen(link, "r");
    if (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        printf("%sfdlink.reopen=%s\n", prefix, line);
    } else {
        err("fdlink.reopen");
    }
    if (f) fclose(f);
    close(fd);
    int dir = open("/app/config", O_RDONLY | O_DIRECTORY);
    memset(target, 0, sizeof target);
    snprintf(link, sizeof link, "/proc/self/fd/%d", dir);
    if (dir < 0 || readlink(link, target, sizeof target - 1) < 0) err("fdlink.dir"); else printf("%sfdlink.dir=%s\n", prefix, target);
    if (dir >= 0) close(dir);
}

static volatile sig_atomic_t alarmed;
static void on_alarm(int sig) { (void)sig; alarmed = 1; }

/* `--alarm`: a blocking recvfrom waits for a datagram that never comes (a
   port without a service in the pod), cut by alarm(1) with a handler
   installed without SA_RESTART: prints how it ended and after how long.
   `--alarm-untimed`: the same on a socket without SO_RCVTIMEO. */
static int alarm_mode(int timed) {
    struct sockaddr_in sa, from;
    socklen_t len = sizeof from;
    char c = 'x';
    struct timeval tv = {.tv_sec = 10};
    struct sigaction act = {.sa_handler = on_alarm};
    struct timespec t0, t1;
    sigaction(SIGALRM, &act, NULL);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (timed) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (resolve(&sa, 7999) || sendto(fd, &c, 1, 0, (struct sockaddr *)&sa, sizeof sa) < 0) {
        err("alarm");
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    alarm(1);
    ssize_t got = recvfrom(fd, &c, 1, 0, (struct sockaddr *)&from, &len);
    int saved = errno;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    printf("alarm=%s\nalarm.handled=%d\nalarm.ms=%ld\n",
           got >= 0 ? "data" : saved == EINTR ? "EINTR" : strerror(saved), (int)alarmed, ms);
    return 0;
}

/* Whether libmirrord_layer is mapped in this process. */
static int layer_loaded(void) {
    char entry[512];
    int found = 0;
    FILE *maps = fopen("/proc/self/maps", "r");
    while (maps && !found && fgets(entry, sizeof entry, maps)) found = strstr(entry, "libmirrord_layer") != NULL;
    if (maps) fclose(maps);
    return found;
}

int main(int argc, char **argv) {
    char line[256] = {0};
    const char *child = NULL;
    if (argc == 2 && strcmp(argv[1], "--alarm") == 0) return alarm_mode(1);
    if (argc == 2 && strcmp(argv[1], "--alarm-untimed") == 0) return alarm_mode(0);
    if (argc == 3 && strcmp(argv[1], "--exec") == 0) child = argv[2];
    else if (argc > 1) prefix = argv[1];
    int parent = argc == 1 || child != NULL;
    printf("%spid=%d\n", prefix, (int)getpid());
    printf("%slayer=%s\n", prefix, layer_loaded() ? "yes" : "no");
    printf("%senv=%s\n", prefix, getenv("POD_NAME") ? getenv("POD_NAME") : "None");
    FILE *f = fopen("/app/config/message.txt", "r");
    if (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        printf("%sfile=%s\n", prefix, line);
    } else {
        err("file");
    }
    if (f) fclose(f);
    FILE *secret = fopen("/app/secrets/token", "r");
    if (secret) { printf("%snotfound=opened\n", prefix); fclose(secret); } else err("notfound");
    struct sockaddr_in sa;
    if (resolve(&sa, 0) == 0) printf("%sdns=%s\n", prefix, inet_ntoa(sa.sin_addr)); else printf("%sdns=ERR:resolve\n", prefix);
    echo("tcp", SOCK_STREAM, 7001, "tcp-ping");
    echo("udp", SOCK_DGRAM, 7002, "udp-ping");
    datagram("udpto", 7002, "udpto-ping");
    datagram_msg("udpmsg", 7002, "udpmsg-ping");
    datagram_mmsg("udpmmsg", 7002, "udpmmsg");
    fdlinks();
    fflush(stdout);
    if (parent) {
        pid_t pid = fork();
        if (pid == 0) {
            if (child) execl(child, child, "child.", (char *)NULL);
            else execl("/proc/self/exe", argv[0], "child.", (char *)NULL);
            _exit(127);
        }
        int status;
        waitpid(pid, &status, 0);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
    }
    return 0;
}
