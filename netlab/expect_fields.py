"""Reading an Expectation's `http` check: its request (method, headers, a body, the proxy to
go through) and its `expect` assertions, every field checked (InputError, exit 2, naming the
field). Pure: netlab.loader's `_expectation` calls it; netlab.expectations runs the result."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from netlab.model import ExpectCheck, HttpExpect

if TYPE_CHECKING:
    from netlab.fields import Fields

# an HTTP method and a header name are RFC 9110 tokens (sections 9.1, 5.1)
HTTP_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
HTTP_TOKEN_RULE = "a token of letters, digits and !#$%&'*+-.^_`|~"
HTTP_EXPECT_FIELDS = ("status", "backend", "path", "host", "headers", "absentHeaders",
                      "responseHeaders")


def http_check(c: Fields, src: str, name: str, url: str,
               answered_by: tuple[tuple[str, str], ...]) -> ExpectCheck:
    """One `http:` check of an Expectation. `expect` is connected, blocked, or a mapping of
    HTTP_EXPECT_FIELDS (which means connected); a key it does not know is an error, not a
    warning: a misspelled assertion would pass unchecked. The method defaults to GET, or
    POST when there is `data` (as curl -d)."""
    method = c.str("method", None)
    if method is not None and not HTTP_TOKEN.fullmatch(method):
        raise c.error("method", f"{method!r} is not an HTTP method ({HTTP_TOKEN_RULE})")
    headers = _header_map(c, "headers")
    data = c.str("data", None)
    via = _via(c)
    expect, status, seen = "connected", None, HttpExpect()
    raw = c.raw("expect", "connected")
    if isinstance(raw, dict):
        e = c.sub("expect")
        assert e is not None
        unknown = [k for k in e.data if k not in HTTP_EXPECT_FIELDS]
        if unknown:
            raise e.error(str(unknown[0]), f"is not one of {', '.join(HTTP_EXPECT_FIELDS)}")
        status = e.int("status", None, lo=100, hi=599)
        seen = _http_expect(e)
    elif isinstance(raw, str):
        expect = c.choice("expect", ("connected", "blocked"), "connected")
    else:
        raise c.error("expect", "must be connected, blocked or a mapping of "
                                f"{', '.join(HTTP_EXPECT_FIELDS)}, not {raw!r}")
    if c.has("status"):
        if status is not None:
            raise c.error("status", "is given twice: here and in expect.status; keep one")
        status = c.int("status", lo=100, hi=599)
    return ExpectCheck("http", src, name, url, expect=expect, answered_by=answered_by,
                       status=200 if status is None else status,
                       method=(method or ("POST" if data is not None else "GET")).upper(),
                       headers=tuple(headers.items()), data=data, via=via, seen=seen)


def _via(c: Fields) -> str | None:
    """The proxy the request goes through, as `netlab http --to` names it."""
    via = c.str("via", None)
    if via is not None:
        kind, _, ref = via.partition("/")
        if not (via == "ingress" or (kind == "gateway" and ref and all(ref.split("/"))
                                     and ref.count("/") <= 1)):
            raise c.error("via", f"{via!r}: use ingress or gateway/[NAMESPACE/]NAME")
    return via


def _http_expect(e: Fields) -> HttpExpect:
    backend = e.str("backend", None)
    if backend is not None and (not backend.strip("/") or backend.count("/") > 1):
        raise e.error("backend", f"{backend!r}: use a pod name (or its prefix, as a "
                                 "Deployment's name) or NAMESPACE/POD")
    path = e.str("path", None)
    if path is not None and not path.startswith("/"):
        raise e.error("path", f"{path!r} must start with '/' (the path, with ?query if "
                              "the backend should see one)")
    absent = e.str_list("absentHeaders")
    for i, k in enumerate(absent):
        if not HTTP_TOKEN.fullmatch(k):
            raise e.where.error(f"{e.path}.absentHeaders[{i}]",
                                f"{k!r} is not a header name ({HTTP_TOKEN_RULE})")
    return HttpExpect(backend, path, e.str("host", None),
                      tuple(_header_map(e, "headers").items()), absent,
                      tuple(_header_map(e, "responseHeaders").items()))


def _header_map(c: Fields, key: str) -> dict[str, str]:
    """A mapping of header names (RFC 9110 tokens) to one-line values."""
    out = c.str_map(key)
    for k, v in out.items():
        where = f"{c.path}.{key}.{k}" if c.path else f"{key}.{k}"
        if not HTTP_TOKEN.fullmatch(k):
            raise c.where.error(where, f"{k!r} is not a header name ({HTTP_TOKEN_RULE})")
        if "\r" in v or "\n" in v:
            raise c.where.error(where, "a header value is one line")
    return out
