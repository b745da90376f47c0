/* Prints what a program observes of the kernel and libc: fd numbers, errno
 * values, threads, signals, fork and exec. With everything configured local,
 * the output under mirrord must equal the output without it. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *errname(int e) { return e && strerrorname_np(e) ? strerrorname_np(e) : "0"; }

#define SHOW(expr)                                                  \
    do {                                                            \
        errno = 0;                                                  \
        long rc_ = (long)(expr);                                    \
        int errno_ = errno;                                         \
        printf("%-44s rc=%ld errno=%s\n", #expr, rc_, errname(errno_)); \
    } while (0)

static volatile sig_atomic_t got_signal;
static void on_signal(int sig) { got_signal = sig; }

static void *worker(void *arg) {
    long n = (long)arg, sum = 0;
    for (long i = 0; i <= n; i++) sum += i;
    return (void *)sum;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    char path[512];
    snprintf(path, sizeof path, "%s/transparency.txt", dir);

    SHOW(open("/nonexistent/file", O_RDONLY));
    SHOW(open(dir, O_WRONLY));
    SHOW(open(path, O_CREAT | O_EXCL | O_WRONLY, 0600));
    SHOW(open(path, O_CREAT | O_EXCL | O_WRONLY, 0600));
    SHOW(write(3, "hello\n", 6));
    SHOW(close(3));
    SHOW(close(3));
    SHOW(close(-1));
    SHOW(read(99, path, 1));
    SHOW(open(path, O_RDONLY));
    SHOW(dup(3));
    SHOW(dup2(3, 10));
    SHOW(fcntl(3, F_DUPFD, 20));
    SHOW(lseek(3, 0, SEEK_END));
    SHOW(socket(AF_INET, SOCK_STREAM, 0));
    int fds[2];
    SHOW(pipe(fds));
    printf("pipe fds %d %d\n", fds[0], fds[1]);
    struct stat st;
    SHOW(stat(path, &st));
    printf("size %ld mode %o\n", (long)st.st_size, st.st_mode);
    SHOW(stat("/nonexistent", &st));
    SHOW(access("/nonexistent", F_OK));
    SHOW(access(path, R_OK));
    char link[64];
    SHOW(readlink("/nonexistent", link, sizeof link));
    SHOW(mkdir(dir, 0700));
    SHOW(unlink("/nonexistent/x"));
    DIR *d = opendir("/nonexistent");
    int opendir_errno = errno;
    printf("opendir missing: %s errno=%s\n", d ? "dir" : "NULL", errname(opendir_errno));

    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(1), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    SHOW(connect(s, (struct sockaddr *)&sa, sizeof sa));
    SHOW(connect(-1, (struct sockaddr *)&sa, sizeof sa));
    struct addrinfo *res = NULL, hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    int gai = getaddrinfo("localhost", "80", &hints, &res);
    printf("getaddrinfo localhost: %d %s\n", gai,
           res ? inet_ntoa(((struct sockaddr_in *)res->ai_addr)->sin_addr) : "-");
    if (res) freeaddrinfo(res);
    printf("getaddrinfo missing: %d\n", getaddrinfo("no-such-host.invalid", NULL, &hints, &res));

    pthread_t threads[8];
    for (long i = 0; i < 8; i++) pthread_create(&threads[i], NULL, worker, (void *)(i * 1000));
    long total = 0;
    for (int i = 0; i < 8; i++) {
        void *r;
        pthread_join(threads[i], &r);
        total += (long)r;
    }
    printf("threads sum %ld\n", total);

    signal(SIGUSR1, on_signal);
    raise(SIGUSR1);
    printf("signal %d\n", (int)got_signal);

    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(path, O_RDONLY);
        _exit(fd == 3 ? 42 : 1);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("fork child exit %d\n", WEXITSTATUS(status));
    pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", "exit 7", (char *)NULL);
        _exit(1);
    }
    waitpid(pid, &status, 0);
    printf("exec child exit %d\n", WEXITSTATUS(status));
    unlink(path);
    return 0;
}
