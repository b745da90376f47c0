/* The program the lldb DAP test debugs: reads what only the stand-in pod
 * has, stops at the breakpoint line, then prints what it saw. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void) {
    const char *pod_name = getenv("POD_NAME");
    char message[256] = {0};
    FILE *f = fopen("/app/config/message.txt", "r");
    if (f) {
        if (!fgets(message, sizeof message, f)) message[0] = 0;
        fclose(f);
    }
    message[strcspn(message, "\n")] = 0;
    char echo[64] = {0};
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(7001)};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (connect(s, (struct sockaddr *)&addr, sizeof addr) == 0) {
        write(s, "dap-ping", 8);
        read(s, echo, sizeof echo - 1);
    }
    close(s);
    printf("pod_name=%s message=%s echo=%s\n", pod_name ? pod_name : "<unset>", message, echo); /* BREAK */
    return 0;
}
