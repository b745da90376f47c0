// The program the delve DAP test debugs. Go makes raw syscalls, which the
// layer cannot see yet: only the environment comes from the pod for now.
package main

import (
	"fmt"
	"os"
)

func main() {
	podName := os.Getenv("POD_NAME")
	fmt.Printf("pod_name=%s\n", podName) // BREAK
}
