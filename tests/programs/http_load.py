"""The incoming tests' client, run inside the pod: CONNS keep-alive
connections to HOST:PORT (127.0.0.1 unless given), REQUESTS requests each, all at once. Each
answer must name its own path. Prints `ok=<answers right>`, `bad=<wrong or
lost>`, `errors=<failed connections>`, then the first answer and the first client's local port, then
`rps=` (requests per second) and `p50_us=`/`p99_us=` (request latency).

usage: http_load.py PORT CONNS REQUESTS [HOST]
"""
import asyncio
import sys
import time

PORT, CONNS, REQUESTS = (int(a) for a in sys.argv[1:4])
HOST = sys.argv[4] if len(sys.argv) > 4 else "127.0.0.1"


async def client(i, results):
    reader, writer = await asyncio.open_connection(HOST, PORT)
    results.setdefault("port", writer.get_extra_info("sockname")[1])
    for j in range(REQUESTS):
        started = time.perf_counter()
        path = "/c%d/r%d" % (i, j)
        writer.write(b"GET %s HTTP/1.1\r\nHost: pod\r\n\r\n" % path.encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for h in head.split(b"\r\n"):
            if h.lower().startswith(b"content-length:"):
                length = int(h.split(b":", 1)[1])
        body = (await reader.readexactly(length)).decode()
        results.setdefault("first", body.strip())
        results["latencies"].append(time.perf_counter() - started)
        if body.startswith("local %s " % path):
            results["ok"] += 1
        else:
            results["bad"] += 1
    writer.close()


async def main():
    results = {"ok": 0, "bad": 0, "latencies": []}
    started = time.perf_counter()
    outcomes = await asyncio.wait_for(
        asyncio.gather(*(client(i, results) for i in range(CONNS)), return_exceptions=True), 120
    )
    elapsed = time.perf_counter() - started
    errors = [o for o in outcomes if isinstance(o, Exception)]
    results["bad"] += CONNS * REQUESTS - results["ok"] - results["bad"]
    print("ok=%d" % results["ok"])
    print("bad=%d" % results["bad"])
    print("errors=%d" % len(errors))
    if errors:
        print("error=%r" % errors[0])
    print("first=%s" % results.get("first", ""))
    print("client_port=%s" % results.get("port", ""))
    latencies = sorted(results["latencies"]) or [0.0]
    print("rps=%.0f" % (results["ok"] / elapsed))
    print("p50_us=%.0f" % (latencies[len(latencies) // 2] * 1e6))
    print("p99_us=%.0f" % (latencies[min(len(latencies) - 1, len(latencies) * 99 // 100)] * 1e6))


asyncio.run(main())
