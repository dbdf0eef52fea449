"""Test machinery the hardening tests share: a cuttable TCP relay and a real `escpredict serve`."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmarks.timing import free_port
from tests.service_helpers import ADMIN_KEY, SCORING_KEY
from tests.test_service_uvicorn import _wait_ready


class Relay:
    """Forwards 127.0.0.1:``port`` to ``target_port``; ``cut()`` is the server dying mid-run.

    A relay, not killing the real server, lets a test choose the exact moment the server
    disappears for its client and still inspect the server's state afterwards.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()  # a connection accepted as cut() runs is reset too
        self._cut = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut(self) -> None:
        """Refuse new connections and reset the open ones, kept-alive ones included.

        ``shutdown`` before ``close``: closing alone does not wake a thread blocked in
        ``accept`` or ``recv`` on Linux, so one more connection could be accepted and
        pooled connections would carry on, as if the server had never died.
        """
        with self._lock:
            self._cut = True
            for sock in [self._listener, *self._sockets]:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self._cut:
                    client.close()
                    return
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


@dataclass
class Server:
    base: str
    process: subprocess.Popen[bytes]
    log: Path

    def rss_mib(self) -> float:
        """Resident memory of the server process, from /proc (Linux)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS in /proc status")


@contextlib.contextmanager
def serve(model_uri: str, tracking_uri: str, log: Path, **env: str) -> Iterator[Server]:
    """`escpredict serve` (one uvicorn process) on a free 127.0.0.1 port, stopped afterwards."""
    port = free_port()
    environment = {
        **os.environ,
        "ESCPREDICT_API_KEYS": SCORING_KEY,
        "ESCPREDICT_ADMIN_KEY": ADMIN_KEY,
        **env,
    }
    command = [
        sys.executable,
        "-m",
        "escpredict",
        "serve",
        "--model",
        model_uri,
        "--tracking-uri",
        tracking_uri,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=environment, stdout=out, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        _wait_ready(server.base, process)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)
