"""Probe of what a program sees: one `key=value` line per check. Run again
as a child (subprocess) with the `child.` prefix."""
import errno, os, socket, subprocess, sys

prefix = sys.argv[1] if len(sys.argv) > 1 else ""

def out(key, fn):
    try:
        value = fn()
    except OSError as e:
        value = "ERR:" + errno.errorcode.get(e.errno, str(e.errno))
    except Exception as e:
        value = "ERR:" + type(e).__name__
    print(f"{prefix}{key}={value}", flush=True)

def not_found():
    open("/app/secrets/token").close()
    return "opened"

def tcp():
    with socket.create_connection(("backend.pod.test", 7001), timeout=10) as s:
        s.sendall(b"tcp-ping")
        return s.recv(64).decode()

def udp():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(10)
        s.sendto(b"udp-ping", ("backend.pod.test", 7002))
        return s.recvfrom(64)[0].decode()

out("env", lambda: os.environ.get("POD_NAME"))
out("file", lambda: open("/app/config/message.txt").read().strip())
out("notfound", not_found)
out("dns", lambda: socket.gethostbyname("backend.pod.test"))
out("tcp", tcp)
out("udp", udp)
if not prefix:
    subprocess.run([sys.executable, __file__, "child."], check=True)
