"""A load client for servers that close every connection (the stand-in
pod's own HTTP server), run inside the pod: CONNS workers at once, each
making REQUESTS requests to 127.0.0.1:PORT, one new connection per request.
Prints `ok=<200 answers>`, `bad=<anything else or a failed connection>` and
`rps=` (requests per second).

usage: http_close_load.py PORT CONNS REQUESTS
"""
import asyncio
import sys
import time

PORT, CONNS, REQUESTS = (int(a) for a in sys.argv[1:4])


async def worker(i, results):
    for j in range(REQUESTS):
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", PORT)
            writer.write(b"GET /w%d/r%d HTTP/1.1\r\nHost: pod\r\n\r\n" % (i, j))
            await writer.drain()
            answer = await reader.read()
            writer.close()
            good = answer.startswith(b"HTTP/1.1 200 ")
        except OSError:
            good = False
        results["ok" if good else "bad"] += 1


async def main():
    results = {"ok": 0, "bad": 0}
    started = time.perf_counter()
    await asyncio.gather(*(worker(i, results) for i in range(CONNS)))
    elapsed = time.perf_counter() - started
    print("ok=%d" % results["ok"])
    print("bad=%d" % results["bad"])
    print("rps=%.1f" % (CONNS * REQUESTS / elapsed))


asyncio.run(main())
