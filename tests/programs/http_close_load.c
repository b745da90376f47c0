/* A load client for servers that close every connection (the stand-in
 * pod's own HTTP server), run inside the pod: CONNS threads at once, each
 * making REQUESTS requests to 127.0.0.1:PORT, one new connection per
 * request, reading each answer to the server's close. Prints `ok=<200
 * answers>`, `bad=<anything else or a failed connection>` and `rps=`
 * (requests per second).
 *
 * In C so the client costs little CPU next to the server it loads: a
 * Python asyncio client spent about twice the server's CPU per request,
 * so on a small machine the client, not the server, set the pace.
 *
 * usage: http_close_load PORT CONNS REQUESTS
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int port, requests;
static atomic_long ok, bad;

static int one(int worker, int request) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int good = 0;
    if (connect(fd, (struct sockaddr *)&to, sizeof to) == 0) {
        char req[128];
        int n = snprintf(req, sizeof req, "GET /w%d/r%d HTTP/1.1\r\nHost: pod\r\n\r\n", worker,
                         request);
        if (write(fd, req, n) == n) {
            /* The status line is checked; the rest is read and dropped. */
            char status[13], rest[4096];
            size_t have = 0;
            ssize_t got;
            while ((got = read(fd, rest, sizeof rest)) > 0) {
                size_t take = (size_t)got < sizeof status - have ? (size_t)got : sizeof status - have;
                memcpy(status + have, rest, take);
                have += take;
            }
            good = got == 0 && have == sizeof status && memcmp(status, "HTTP/1.1 200 ", 13) == 0;
        }
    }
    close(fd);
    return good;
}

static void *worker(void *arg) {
    int id = (int)(long)arg;
    for (int r = 0; r < requests; r++) {
        if (one(id, r))
            atomic_fetch_add(&ok, 1);
        else
            atomic_fetch_add(&bad, 1);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s PORT CONNS REQUESTS\n", argv[0]);
        return 2;
    }
    port = atoi(argv[1]);
    int conns = atoi(argv[2]);
    requests = atoi(argv[3]);
    pthread_t threads[conns];
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (int i = 0; i < conns; i++)
        pthread_create(&threads[i], NULL, worker, (void *)(long)i);
    for (int i = 0; i < conns; i++)
        pthread_join(threads[i], NULL);
    clock_gettime(CLOCK_MONOTONIC, &end);
    double secs = (end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) / 1e9;
    printf("ok=%ld\nbad=%ld\nrps=%.1f\n", atomic_load(&ok), atomic_load(&bad),
           (double)conns * requests / secs);
    return 0;
}
