"""The quick start's sample program: prints what it sees of its environment.

Run it under `mirrord exec --target pid/<pod>` and every line shows the
stand-in pod's view: its env var, a file only the pod has, a name only the
pod's /etc/hosts knows, and TCP/UDP/HTTP services on the pod's loopback.
"""
import os
import socket
import urllib.request

def show(label, fn):
    try:
        print(f"{label:<28} {fn()}")
    except Exception as e:  # show the failure and go on
        print(f"{label:<28} FAILED: {type(e).__name__}: {e}")

def tcp_echo():
    with socket.create_connection(("backend.pod.test", 7001), timeout=5) as s:
        s.sendall(b"ping over tcp")
        return s.recv(100).decode()

def udp_echo():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.connect(("backend.pod.test", 7002))
        s.send(b"ping over udp")
        return s.recv(100).decode()

def http_get():
    with urllib.request.urlopen("http://backend.pod.test:8080/", timeout=5) as r:
        return r.read().decode().strip()

show("env POD_NAME:", lambda: os.environ.get("POD_NAME", "(not set)"))
show("file /app/config/message.txt:", lambda: open("/app/config/message.txt").read().strip())
show("hosts backend.pod.test:", lambda: socket.gethostbyname("backend.pod.test"))
show("tcp echo on pod loopback:", tcp_echo)
show("udp echo on pod loopback:", udp_echo)
show("http on pod loopback:", http_get)
