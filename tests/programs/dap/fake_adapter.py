"""A scripted debug adapter for the proxy tests: logs every message it
receives (one JSON per line, to argv[1]), answers initialize and launch,
asks the client to start a child session (startDebugging) during launch,
and sends an event in an unusual but valid formatting."""
import json
import sys

log = open(sys.argv[1], "a", buffering=1)
out = sys.stdout.buffer
inp = sys.stdin.buffer
seq = 0


def send(message):
    global seq
    seq += 1
    message["seq"] = seq
    body = json.dumps(message).encode()
    out.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    out.flush()
    return seq


def send_raw(body):
    global seq
    seq += 1
    body = body.replace(b"SEQ", str(seq).encode())
    out.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    out.flush()


def receive():
    length = None
    while True:
        line = inp.readline()
        if not line:
            return None
        line = line.strip()
        if not line:
            break
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    message = json.loads(inp.read(length))
    log.write(json.dumps(message) + "\n")
    return message


def respond(request, body=None):
    send({"type": "response", "request_seq": request["seq"], "success": True,
          "command": request["command"], "body": body or {}})


while True:
    message = receive()
    if message is None:
        break
    if message.get("type") != "request":
        continue
    command = message["command"]
    if command == "initialize":
        respond(message, {"supportsConfigurationDoneRequest": True})
        send({"type": "event", "event": "initialized"})
    elif command == "launch":
        send_raw(b'{ "seq" : SEQ , "type":"event","event":"vendor/odd","body":{"x":"\\u00e9", "n": 1.50e1}}')
        child = send({"type": "request", "command": "startDebugging", "arguments": {
            "request": "launch",
            "configuration": {"type": "fake", "name": "child", "mirrord": {"target": "pid/1"}}}})
        answer = receive()
        log.write(json.dumps({"startDebugging_seq": child}) + "\n")
        respond(message)
    elif command == "disconnect":
        respond(message)
        break
    else:
        respond(message)
