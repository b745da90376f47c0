// A Go HTTP server for the incoming tests on the syscall path (a plain
// `go build` is static: LD_PRELOAD never reaches it). Answers every
// request with `local <path> peer=<client> go` (the client as accept
// reported it); prints `listening <port>` once it
// listens. A request for `/close` closes the listener after its answer;
// the program then runs on without it until it is stopped.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	listener, err := net.Listen("tcp", ":"+os.Args[1])
	if err != nil {
		fmt.Println("listen error:", err)
		os.Exit(1)
	}
	fmt.Printf("listening %s\n", os.Args[1])
	http.Serve(listener, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "local %s peer=%s go\n", r.URL.Path, r.RemoteAddr)
		if r.URL.Path == "/close" {
			listener.Close()
		}
	}))
	// Nothing more on stdout: the test stopped reading it.
	time.Sleep(time.Hour)
}
