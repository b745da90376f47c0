// Writes files under a directory of the target through the syscall path:
// os.WriteFile (O_WRONLY|O_CREAT|O_TRUNC), os.Create + write + seek + read
// back (O_RDWR), an append to an existing file (O_APPEND), then reads each
// back after closing it, as a program would; then lists the directory.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
)

func main() {
	dir := os.Args[1]
	if err := os.WriteFile(dir+"/whole.txt", []byte("written whole\n"), 0o644); err != nil {
		fmt.Println("writefile error:", err)
		os.Exit(1)
	}
	f, err := os.Create(dir + "/created.txt")
	if err != nil {
		fmt.Println("create error:", err)
		os.Exit(1)
	}
	f.WriteString("created and read back\n")
	f.Seek(0, io.SeekStart)
	back, _ := io.ReadAll(f)
	f.Close()
	fmt.Printf("readback=%q\n", string(back))
	a, err := os.OpenFile(dir+"/log.txt", os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		fmt.Println("append error:", err)
		os.Exit(1)
	}
	a.WriteString("second line\n")
	a.Close()
	for _, name := range []string{"whole.txt", "created.txt", "log.txt"} {
		data, err := os.ReadFile(dir + "/" + name)
		if err != nil {
			fmt.Printf("%s error: %v\n", name, err)
			continue
		}
		fmt.Printf("%s=%q\n", name, string(data))
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		fmt.Println("readdir error:", err)
		os.Exit(1)
	}
	var names []string
	for _, e := range entries {
		kind := "file"
		if e.IsDir() {
			kind = "dir"
		}
		names = append(names, e.Name()+":"+kind)
	}
	fmt.Printf("entries=%s\n", strings.Join(names, ","))
	// Relative to the listed directory's fd: openat(dirfd, name).
	d, _ := os.Open(dir)
	defer d.Close()
	inner := "<unread>"
	fd, err := syscall.Openat(int(d.Fd()), "sub/inner.txt", syscall.O_RDONLY, 0)
	if err == nil {
		data, _ := io.ReadAll(os.NewFile(uintptr(fd), "inner"))
		inner = string(data)
	}
	fmt.Printf("inner=%q err=%v\n", inner, err)
}
