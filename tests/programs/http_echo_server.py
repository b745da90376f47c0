"""A keep-alive HTTP/1.1 server for the incoming tests: answers every
request with `local <path> peer=<host>:<port> via=<listening port>` (the
peer as accept and getpeername report it). Prints `listening <port>` once
listen() returned. Listens on HOST (0.0.0.0 unless given; an IPv6
address such as `::` or `::1` makes an IPv6 socket).

usage: http_echo_server.py PORT [HOST]
"""
import asyncio
import sys

from listener import listening_socket


PORT = int(sys.argv[1])
HOST = sys.argv[2] if len(sys.argv) > 2 else "0.0.0.0"


async def serve(reader, writer):
    sock = writer.get_extra_info("socket")
    accepted = writer.get_extra_info("peername")
    peer = sock.getpeername()
    assert accepted[:2] == peer[:2], (accepted, peer)
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            line = head.split(b"\r\n", 1)[0].decode()
            path = line.split(" ")[1]
            length = 0
            for h in head.split(b"\r\n")[1:]:
                if h.lower().startswith(b"content-length:"):
                    length = int(h.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            body = ("local %s peer=%s:%d via=%d\n" % (path, peer[0], peer[1], PORT)).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(port):
    listener = listening_socket(HOST, port)
    print("listening %d" % port, flush=True)
    server = await asyncio.start_server(serve, sock=listener)
    async with server:
        await server.serve_forever()


asyncio.run(main(PORT))
