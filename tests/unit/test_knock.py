"""sockets.knock: a connection a daemon's loop wakes for (backend bgp's wait for BIRD)."""

from __future__ import annotations

import socket
from pathlib import Path

from netlab.kernel.sockets import knock


def test_knock_connects_and_hangs_up(tmp_path: Path):
    path = tmp_path / "daemon.ctl"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(path))
        listener.listen(4)
        listener.settimeout(2)
        knock(path)
        conn, _ = listener.accept()  # the daemon sees a connection...
        with conn:
            conn.settimeout(2)
            assert conn.recv(10) == b""  # ...already hung up


def test_knock_on_nobody_is_quiet(tmp_path: Path):
    knock(tmp_path / "missing.ctl")
    (tmp_path / "file").write_text("x")
    knock(tmp_path / "file")  # not a socket
