/* Probe of what a C program sees; fork+execs itself as a child. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
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

int main(int argc, char **argv) {
    char line[256] = {0};
    if (argc > 1) prefix = argv[1];
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
    fflush(stdout);
    if (argc == 1) {
        pid_t pid = fork();
        if (pid == 0) {
            execl("/proc/self/exe", argv[0], "child.", (char *)NULL);
            _exit(127);
        }
        int status;
        waitpid(pid, &status, 0);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
    }
    return 0;
}
