// Probe of what a Go program sees; starts itself again as a child, or the
// program named by PROBE_CHILD (given the "child." prefix). With PROBE_OUT
// set, it and its child write to that file instead of stdout (a debugger
// keeps the program's stdout).
package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"
)

var prefix = ""

func fail(key string, err error) {
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Printf("%s%s=ERR:ENOENT\n", prefix, key)
	} else {
		fmt.Printf("%s%s=ERR:%v\n", prefix, key, err)
	}
}

func echo(key, network string, port int, ping string) {
	conn, err := net.Dial(network, fmt.Sprintf("backend.pod.test:%d", port))
	if err != nil {
		fail(key, err)
		return
	}
	defer conn.Close()
	fmt.Printf("%s%s.peer=%s\n", prefix, key, conn.RemoteAddr())
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte(ping)); err != nil {
		fail(key, err)
		return
	}
	buf := make([]byte, 64)
	n, err := conn.Read(buf)
	if err != nil {
		fail(key, err)
		return
	}
	fmt.Printf("%s%s=%s\n", prefix, key, buf[:n])
}

// Unconnected UDP: WriteTo and ReadFrom on a socket that never connects;
// the reply's source is printed too.
func datagram(key string, port int, ping string) {
	to, err := net.ResolveUDPAddr("udp", fmt.Sprintf("backend.pod.test:%d", port))
	if err != nil {
		fail(key, err)
		return
	}
	conn, err := net.ListenPacket("udp", ":0")
	if err != nil {
		fail(key, err)
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.WriteTo([]byte(ping), to); err != nil {
		fail(key, err)
		return
	}
	buf := make([]byte, 64)
	n, from, err := conn.ReadFrom(buf)
	if err != nil {
		fail(key, err)
		return
	}
	fmt.Printf("%s%s.from=%s\n", prefix, key, from)
	fmt.Printf("%s%s=%s\n", prefix, key, buf[:n])
}

// Unconnected UDP through WriteMsgUDP and ReadMsgUDP (sendmsg and recvmsg
// with the address in the msghdr).
func datagramMsg(key string, port int, ping string) {
	to, err := net.ResolveUDPAddr("udp", fmt.Sprintf("backend.pod.test:%d", port))
	if err != nil {
		fail(key, err)
		return
	}
	conn, err := net.ListenUDP("udp", nil)
	if err != nil {
		fail(key, err)
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := conn.WriteMsgUDP([]byte(ping), nil, to); err != nil {
		fail(key, err)
		return
	}
	buf, oob := make([]byte, 64), make([]byte, 64)
	n, _, _, from, err := conn.ReadMsgUDP(buf, oob)
	if err != nil {
		fail(key, err)
		return
	}
	fmt.Printf("%s%s.from=%s\n", prefix, key, from)
	fmt.Printf("%s%s=%s\n", prefix, key, buf[:n])
}

// The fd links of a remote file and directory: readlink names the pod's
// path, and the file opened again through /dev/fd reads the pod's content.
func fdlinks() {
	file, err := os.Open("/app/config/message.txt")
	if err != nil {
		fail("fdlink", err)
		return
	}
	defer file.Close()
	if target, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", file.Fd())); err == nil {
		fmt.Printf("%sfdlink=%s\n", prefix, target)
	} else {
		fail("fdlink", err)
	}
	if data, err := os.ReadFile(fmt.Sprintf("/dev/fd/%d", file.Fd())); err == nil {
		fmt.Printf("%sfdlink.reopen=%s\n", prefix, strings.TrimSpace(string(data)))
	} else {
		fail("fdlink.reopen", err)
	}
	dir, err := os.Open("/app/config")
	if err != nil {
		fail("fdlink.dir", err)
		return
	}
	defer dir.Close()
	if target, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", dir.Fd())); err == nil {
		fmt.Printf("%sfdlink.dir=%s\n", prefix, target)
	} else {
		fail("fdlink.dir", err)
	}
}

func main() {
	if len(os.Args) > 1 {
		prefix = os.Args[1]
	}
	if out := os.Getenv("PROBE_OUT"); out != "" {
		f, err := os.Create(out)
		if err != nil {
			fail("out", err)
			os.Exit(1)
		}
		defer f.Close()
		os.Stdout = f
	}
	env, ok := os.LookupEnv("POD_NAME")
	if !ok {
		env = "None"
	}
	fmt.Printf("%senv=%s\n", prefix, env)
	if data, err := os.ReadFile("/app/config/message.txt"); err == nil {
		fmt.Printf("%sfile=%s\n", prefix, strings.TrimSpace(string(data)))
	} else {
		fail("file", err)
	}
	if _, err := os.ReadFile("/app/secrets/token"); err == nil {
		fmt.Printf("%snotfound=opened\n", prefix)
	} else {
		fail("notfound", err)
	}
	if addrs, err := net.LookupHost("backend.pod.test"); err == nil && len(addrs) > 0 {
		fmt.Printf("%sdns=%s\n", prefix, addrs[0])
	} else {
		fmt.Printf("%sdns=ERR:resolve %v\n", prefix, err)
	}
	echo("tcp", "tcp", 7001, "tcp-ping")
	echo("udp", "udp", 7002, "udp-ping")
	datagram("udpto", 7002, "udpto-ping")
	datagramMsg("udpmsg", 7002, "udpmsg-ping")
	fdlinks()
	if len(os.Args) == 1 {
		self, err := os.Executable()
		if err != nil {
			fail("child", err)
			os.Exit(1)
		}
		if other := os.Getenv("PROBE_CHILD"); other != "" {
			self = other
		}
		child := exec.Command(self, "child.")
		child.Stdout = os.Stdout
		child.Stderr = os.Stderr
		if err := child.Run(); err != nil {
			fail("child", err)
			os.Exit(1)
		}
	}
}
