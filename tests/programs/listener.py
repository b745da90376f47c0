"""The listening socket of the incoming tests' servers: on HOST (an IPv6
address such as `::` or `::1` makes an IPv6 socket; `::` is dual-stack),
port PORT, SO_REUSEADDR, listening. Imported by the servers beside it."""
import socket


def listening_socket(host, port):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6 and host == "::":
        # Dual-stack whatever the system default.
        listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    listener.bind((host, port))
    listener.listen(1024)
    return listener
