"""The program the DAP tests debug: reads what only the stand-in pod has,
stops at the breakpoint line so the test can look at its variables, then
prints what it saw."""
import os
import socket

pod_name = os.environ.get("POD_NAME", "<unset>")
message = open("/app/config/message.txt").read().strip()
with socket.create_connection(("127.0.0.1", 7001), timeout=10) as conn:
    conn.sendall(b"dap-ping")
    echo = conn.recv(64).decode()
print(f"pod_name={pod_name} message={message} echo={echo}", flush=True)  # BREAK
