// The program the delve DAP test debugs: it reads what only the stand-in
// pod has (Go makes raw syscalls: the syscall path answers them), stops at
// the breakpoint line, then prints what it saw.
package main

import (
	"fmt"
	"net"
	"os"
	"strings"
)

func main() {
	podName := os.Getenv("POD_NAME")
	message := "<unread>"
	if data, err := os.ReadFile("/app/config/message.txt"); err == nil {
		message = strings.TrimSpace(string(data))
	} else {
		message = "error: " + err.Error()
	}
	echo := "<none>"
	if conn, err := net.Dial("tcp", "127.0.0.1:7001"); err == nil {
		conn.Write([]byte("dap-ping"))
		buf := make([]byte, 64)
		n, _ := conn.Read(buf)
		echo = string(buf[:n])
		conn.Close()
	} else {
		echo = "error: " + err.Error()
	}
	fmt.Printf("pod_name=%s message=%s echo=%s\n", podName, message, echo) // BREAK
}
