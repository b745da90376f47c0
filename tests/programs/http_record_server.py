"""A keep-alive HTTP/1.1 server for the mirror tests: for every request it
receives it appends `<path> <body length> <sha256 of the body> <peer>` to
the file RECORD (one line, flushed), then answers `local <path>`. Prints
`listening <port>` once listen() returned. Listens on HOST (0.0.0.0
unless given; `::` is a dual-stack IPv6 socket).

usage: http_record_server.py PORT RECORD [HOST]
"""
import asyncio
import hashlib
import sys

from listener import listening_socket


PORT = int(sys.argv[1])
RECORD = sys.argv[2]
HOST = sys.argv[3] if len(sys.argv) > 3 else "0.0.0.0"


async def serve(reader, writer):
    peer = writer.get_extra_info("socket").getpeername()
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b"\r\n", 1)[0].decode().split(" ")[1]
            length = 0
            for h in head.split(b"\r\n")[1:]:
                if h.lower().startswith(b"content-length:"):
                    length = int(h.split(b":", 1)[1])
            body = await reader.readexactly(length) if length else b""
            with open(RECORD, "a") as f:
                f.write("%s %d %s %s:%d\n" % (path, len(body), hashlib.sha256(body).hexdigest(), peer[0], peer[1]))
            answer = ("local %s\n" % path).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(answer), answer))
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
