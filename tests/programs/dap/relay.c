/* The floor for any process between a DAP client and its adapter: spawns
 * the adapter and copies bytes both ways with poll(2), nothing else. The
 * DAP benchmark compares mirrord dap with it. Usage: relay ADAPTER [ARGS] */
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int to_adapter[2], from_adapter[2];
    if (argc < 2 || pipe(to_adapter) || pipe(from_adapter)) return 2;
    pid_t child = fork();
    if (child == 0) {
        dup2(to_adapter[0], 0);
        dup2(from_adapter[1], 1);
        close(to_adapter[1]);
        close(from_adapter[0]);
        execvp(argv[1], argv + 1);
        _exit(127);
    }
    close(to_adapter[0]);
    close(from_adapter[1]);
    struct pollfd fds[2] = {{.fd = 0, .events = POLLIN}, {.fd = from_adapter[0], .events = POLLIN}};
    int out[2] = {to_adapter[1], 1};
    char buf[65536];
    for (;;) {
        if (poll(fds, 2, -1) < 0) break;
        for (int i = 0; i < 2; i++) {
            if (!(fds[i].revents & (POLLIN | POLLHUP))) continue;
            ssize_t n = read(fds[i].fd, buf, sizeof buf);
            if (n <= 0) goto done;
            for (ssize_t off = 0; off < n;) {
                ssize_t w = write(out[i], buf + off, n - off);
                if (w <= 0) goto done;
                off += w;
            }
        }
    }
done:
    kill(child, SIGKILL);
    waitpid(child, 0, 0);
    return 0;
}
