#!/usr/bin/env python3
"""TCP echo server for the firmware tests: listens on 127.0.0.1:PORT,
echoes every connection until it closes, writes PORT to a ready file.

usage: firmware_echo_server.py PORT READY_FILE [LOG_FILE]
Each connection is logged as "conn N: M bytes echoed" on stdout/LOG_FILE.
"""
import socket
import sys
import threading


def serve(conn, n, log):
    total = 0
    try:
        while True:
            data = conn.recv(65536)
            if not data:
                break
            conn.sendall(data)
            total += len(data)
    except OSError as e:
        log(f"conn {n}: error {e}")
    finally:
        conn.close()
    log(f"conn {n}: {total} bytes echoed")


def main():
    port = int(sys.argv[1])
    ready = sys.argv[2]
    out = open(sys.argv[3], "a", buffering=1) if len(sys.argv) > 3 else sys.stdout

    def log(msg):
        print(msg, file=out, flush=True)

    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(4)
    with open(ready, "w") as f:
        f.write(f"{port}\n")
    n = 0
    while True:
        conn, _ = s.accept()
        n += 1
        threading.Thread(target=serve, args=(conn, n, log), daemon=True).start()


if __name__ == "__main__":
    main()
