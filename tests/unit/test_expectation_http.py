"""Expectation `http` checks: a request of their own (method, headers, a body, the proxy) and
assertions about what the backend received, read with exit-2 errors for malformed fields,
judged against an answer, and run against a fake lab."""

from __future__ import annotations

from typing import Any

import pytest

from netlab.errors import InputError
from netlab.expectations import backend_matches, http_problems, run_check
from netlab.http_client import HttpResult
from netlab.loader import build, read_text
from netlab.model import ExpectCheck, HttpExpect

HEAD = """
apiVersion: netlab.dev/v1alpha1
kind: Expectation
metadata: {name: routes}
spec:
  checks:
"""


def checks(body: str) -> tuple[list[ExpectCheck], list[str]]:
    """The checks of an Expectation as the loader reads it, and its warnings."""
    m = build(read_text(HEAD + body, "e.yaml"))
    return list(m.expectations["routes"].checks), m.warnings


def error(body: str) -> str:
    with pytest.raises(InputError) as e:
        checks(body)
    assert e.value.exit_code == 2
    return str(e.value)


def test_the_old_form_still_reads_the_same():
    (c, blocked), warnings = checks("""
  - {from: external, http: "https://shop.example.com/", status: 201, answeredBy: {app: shop}}
  - {from: external, http: "http://x.example/", expect: blocked}
""")
    assert not warnings
    assert c.kind == "http" and (c.src, c.dst, c.status, c.expect) == (
        "external", "https://shop.example.com/", 201, "connected")
    assert c.answered_by == (("app", "shop"),)
    assert (c.method, c.headers, c.data, c.via) == ("GET", (), None, None)
    assert c.seen == HttpExpect()
    assert (blocked.expect, blocked.status) == ("blocked", 200)


def test_a_request_and_what_the_backend_must_have_received():
    (c,), warnings = checks("""
  - from: external
    http: "http://shop.example/api?v=2"
    headers: {X-Canary: always, X-Num: 5}
    data: "name=ada"
    via: gateway/infra/public
    expect:
      status: 201
      backend: default/shop-v2
      path: /api?v=2
      host: shop.example
      headers: {X-Forwarded-Proto: http}
      absentHeaders: [x-debug]
      responseHeaders: {X-Version: v2}
""")
    assert not warnings
    assert (c.method, c.data, c.via, c.status, c.expect) == (
        "POST", "name=ada", "gateway/infra/public", 201, "connected")  # POST: it has data
    assert c.headers == (("X-Canary", "always"), ("X-Num", "5"))
    assert c.seen == HttpExpect("default/shop-v2", "/api?v=2", "shop.example",
                                (("X-Forwarded-Proto", "http"),), ("x-debug",),
                                (("X-Version", "v2"),))
    (c,), _ = checks("""
  - {from: a, http: "http://shop.example/", method: delete, data: ""}
""")
    assert (c.method, c.data) == ("DELETE", "")


def test_checks_of_other_kinds_have_no_request_of_their_own():
    (conn, dns, http), _ = checks("""
  - {from: a, to: svc/b, port: 80}
  - {from: a, dns: b}
  - {from: a, http: "http://s/", headers: {X-A: "1"}, expect: {headers: {X-A: "1"}}}
""")
    for c in (conn, dns):
        assert (c.method, c.headers, c.data, c.via, c.seen) == ("GET", (), None, None,
                                                                HttpExpect())
    assert http.seen.headers == (("X-A", "1"),)
    # frozen and hashable, as every part of the model: a set of checks, a cache key
    assert len({conn, dns, http, checks('  - {from: a, http: "http://s/", headers: '
                                        '{X-A: "1"}, expect: {headers: {X-A: "1"}}}\n'
                                        )[0][0]}) == 3


@pytest.mark.parametrize(("check", "message"), [
    ('{from: a, http: "http://s/", method: "GE T"}',
     "spec.checks[0].method: 'GE T' is not an HTTP method"),
    ('{from: a, http: "http://s/", headers: {"Bad Name": x}}',
     "spec.checks[0].headers.Bad Name: 'Bad Name' is not a header name"),
    ('{from: a, http: "http://s/", headers: [X-A]}',
     "spec.checks[0].headers: must be a mapping, not a list"),
    ('{from: a, http: "http://s/", headers: {X-A: {b: c}}}',
     "spec.checks[0].headers.X-A: must be a string"),
    ('{from: a, http: "http://s/", via: gateway}',
     "spec.checks[0].via: 'gateway': use ingress or gateway/[NAMESPACE/]NAME"),
    ('{from: a, http: "http://s/", expect: maybe}',
     "spec.checks[0].expect: 'maybe' is not one of connected, blocked"),
    ('{from: a, http: "http://s/", expect: [200]}',
     "spec.checks[0].expect: must be connected, blocked or a mapping of status, backend"),
    ('{from: a, http: "http://s/", expect: {stauts: 200}}',
     "spec.checks[0].expect.stauts: is not one of status, backend, path, host, headers, "
     "absentHeaders, responseHeaders"),
    ('{from: a, http: "http://s/", expect: {status: 99}}',
     "spec.checks[0].expect.status: 99 is out of range 100-599"),
    ('{from: a, http: "http://s/", status: 200, expect: {status: 200}}',
     "spec.checks[0].status: is given twice"),
    ('{from: a, http: "http://s/", expect: {path: api}}',
     "spec.checks[0].expect.path: 'api' must start with '/'"),
    ('{from: a, http: "http://s/", expect: {backend: a/b/c}}',
     "spec.checks[0].expect.backend: 'a/b/c': use a pod name"),
    ('{from: a, http: "http://s/", expect: {absentHeaders: [ok, "no way"]}}',
     "spec.checks[0].expect.absentHeaders[1]: 'no way' is not a header name"),
    ('{from: a, http: "http://s/", expect: {responseHeaders: {"a b": c}}}',
     "spec.checks[0].expect.responseHeaders.a b: 'a b' is not a header name"),
    ('{from: a, http: "ftp://s/"}', "spec.checks[0].http: 'ftp://s/' is not an http://"),
])
def test_malformed_fields_are_exit_2_naming_the_field(check: str, message: str):
    text = error(f"  - {check}\n")
    assert text.startswith("e.yaml:2: Expectation routes: "), text
    assert message in text, text


def test_unknown_check_fields_still_only_warn():
    _, warnings = checks('  - {from: a, http: "http://s/", colour: blue}\n')
    assert warnings == ["Expectation routes: spec.checks[0].colour is not modelled by netlab "
                        "and is ignored"]


def result(**kw: Any) -> HttpResult:
    base: dict[str, Any] = dict(
        status=200, reason="OK", answered_by="default/shop-v2-abc",
        headers={"X-Version": "v2", "X-Netlab-Pod": "default/shop-v2-abc"},
        seen_method="GET", seen_path="/api?v=2", seen_host="shop.example",
        seen_headers={"x-forwarded-proto": "http", "host": "shop.example"})
    return HttpResult("http://shop.example/api?v=2", "172.18.0.200", **(base | kw))


def test_backend_matches_a_name_prefix_or_a_namespaced_one():
    assert backend_matches("default/shop-v2-abc", "shop-v2")
    assert backend_matches("default/shop-v2-abc", "default/shop-v2")
    assert not backend_matches("default/shop-v2-abc", "other/shop-v2")
    assert not backend_matches("default/shop-v2-abc", "v2")
    assert not backend_matches(None, "shop") and not backend_matches("internet", "internet")


def test_http_problems_say_what_was_there_instead():
    want = HttpExpect("shop-v2", "/api?v=2", "shop.example", (("X-Forwarded-Proto", "http"),),
                      ("x-debug",), (("x-version", "v2"),))
    assert http_problems(result(), want) == []
    got = http_problems(result(answered_by="default/shop-v1-x", seen_path="/api",
                               seen_host="other", seen_headers={"x-debug": "1"},
                               headers={}), want)
    assert got == [
        "expected an answer from shop-v2, not default/shop-v1-x",
        "expected the backend to receive path /api?v=2, not /api",
        "expected the backend to receive Host shop.example, not other",
        "expected the backend to receive X-Forwarded-Proto: http, it had none",
        "expected the backend not to receive x-debug (it had 1)",
        "expected the answer to carry x-version: v2, it had none"]
    assert http_problems(result(seen_headers={"x-forwarded-proto": "https"}),
                         HttpExpect(headers=(("x-forwarded-proto", "http"),))) == [
        "expected the backend to receive x-forwarded-proto: http, not https"]


class FakeLab:
    def __init__(self, r: HttpResult) -> None:
        self.r = r
        self.calls: list[tuple[tuple, dict]] = []

    def http(self, *args: Any, **kwargs: Any) -> HttpResult:
        self.calls.append((args, kwargs))
        return self.r

    def http_hints(self, url: str, to: str | None = None) -> list[str]:
        return [] if self.r.answered_by != "default/shop-v1-x" else [
            "HTTPRoute default/shop: ResolvedRefs False (BackendNotFound): Service shop-v2 "
            "not found"]


def test_running_a_check_sends_its_request_and_judges_the_answer():
    (c,), _ = checks("""
  - from: external
    http: "http://shop.example/api?v=2"
    headers: {X-Canary: always}
    data: "a=1"
    via: ingress
    expect: {backend: shop-v2, path: "/api?v=2", responseHeaders: {X-Version: v2}}
""")
    lab = FakeLab(result())
    o = run_check(lab, "routes", c)  # type: ignore[arg-type]
    assert o.passed, o
    assert o.title == "external POST http://shop.example/api?v=2: 200"
    assert o.evidence == ("200 OK, answered by default/shop-v2-abc; the backend received GET "
                          "/api?v=2, Host shop.example")
    (args, kwargs), = lab.calls
    assert args == ("http://shop.example/api?v=2", "external", "POST",
                    {"X-Canary": "always", "Content-Type": "application/x-www-form-urlencoded"})
    assert kwargs == {"timeout": 2.0, "data": b"a=1", "to": "ingress"}
    lab.r = result(answered_by="default/shop-v1-x")
    o = run_check(lab, "routes", c)  # type: ignore[arg-type]
    assert not o.passed
    assert o.hint == ("expected an answer from shop-v2, not default/shop-v1-x. HTTPRoute "
                      "default/shop: ResolvedRefs False (BackendNotFound): Service shop-v2 not "
                      "found")  # the controller's words on what serves the URL
