/* Stops at the breakpoint (a few frames deep) so the DAP benchmark can
 * send request storms. */
#include <stdio.h>

static int leaf(int n) {
    return n * 2; /* BREAK */
}

static int middle(int n) { return leaf(n) + 1; }

int main(void) {
    printf("%d\n", middle(20));
    return 0;
}
