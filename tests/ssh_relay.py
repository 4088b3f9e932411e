"""``ssh -o ProxyCommand="python ssh_relay.py HOST PORT"``: reach an sshd on a non-standard port.

Ray's cluster launcher has no SSH port setting; it passes ``auth.ssh_proxy_command`` to every
``ssh`` and ``rsync`` it runs. This relays the SSH stream between stdin/stdout and HOST:PORT.
"""

from __future__ import annotations

import socket
import sys
import threading


def _upstream(sock: socket.socket) -> None:
    """Copy stdin to the socket; half-close it when ssh closes its end."""
    while data := sys.stdin.buffer.raw.read(65536):
        sock.sendall(data)
    sock.shutdown(socket.SHUT_WR)


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    with socket.create_connection((host, port)) as sock:
        threading.Thread(target=_upstream, args=(sock,), daemon=True).start()
        while data := sock.recv(65536):
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
