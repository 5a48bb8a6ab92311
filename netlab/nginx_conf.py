"""nginx.conf pieces shared by the Ingress controller (features/ingress.py) and the Gateway
data planes (gateway/nginx.py): the main context and the head of the http block, with every
file nginx writes (pid, logs, temporary bodies) kept in the proxy's own directory of the
lab's state, so nothing of it lands on the host's /var."""

from __future__ import annotations

from pathlib import Path


def head(d: Path | str, title: str) -> list[str]:
    """The first lines of an nginx.conf whose files live in `d`, up to the opening of the
    http block and its logs and temporary paths (the caller goes on inside http {)."""
    return [
        f"# rendered by netlab {title}; do not edit",
        "worker_processes 1;", "user root;", f"pid {d}/nginx.pid;",
        f"error_log {d}/error.log notice;", "events { worker_connections 1024; }", "http {",
        f"  access_log {d}/access.log;",
        f"  client_body_temp_path {d}/tmp/body;", f"  proxy_temp_path {d}/tmp/proxy;",
        f"  fastcgi_temp_path {d}/tmp/fastcgi;", f"  uwsgi_temp_path {d}/tmp/uwsgi;",
        f"  scgi_temp_path {d}/tmp/scgi;",
        "  server_names_hash_bucket_size 128;",
    ]
