"""The Gateway data plane's nginx.conf (netlab.gateway.nginx): representative configurations
pinned by golden files, every one accepted by `nginx -t`, and the parts that carry the
spec's edge cases (path rewrites, redirects, hostnames, certificates) checked one by one.

Regenerate the goldens after an intended change with: NETLAB_UPDATE_GOLDEN=1 pytest tests/unit
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from netlab.errors import InputError
from netlab.gateway import dataplane as dp
from netlab.gateway import nginx

GOLDEN = Path(__file__).parent / "golden" / "gateway"
DIR = Path("/var/lib/netlab/labs/demo/gateway/default-gw")  # a fixed place for the goldens


def be(name: str, weight: int = 1, *servers: str, **kw) -> dp.Backend:
    return dp.Backend(name, weight, servers or (f"10.244.1.{len(name)}:8080",), **kw)


def rule(i: int, match: dp.Match, *backends: dp.Backend, **kw) -> dp.Rule:
    return dp.Rule("default/web", i, match, backends=backends, **kw)


MATCHING = dp.GatewayConfig("default/gw", (dp.Server(80, "HTTP", (
    dp.VirtualHost("foo.example.com", (
        rule(0, dp.Match("Exact", "/a.b$c"), be("default-v1-80")),
        rule(1, dp.Match("PathPrefix", "/api/", method="POST",
                         headers=(("Exact", "X-Env", 'can"ary'), ("Exact", "x-env", "ignored")),
                         query=(("RegularExpression", "v", "[0-9]+"),)), be("default-v2-80")),
        rule(2, dp.Match("RegularExpression", "/re/[a-z]+"), be("default-v1-80", 3),
             be("default-v2-80", 1), be("default-v3-80", 0)),
        rule(3, dp.Match("PathPrefix", "/bad"), dp.Backend("default-gone-80", error=500)),
        rule(4, dp.Match("PathPrefix", "/none"), dp.Backend("default-empty-80")),
        rule(5, dp.Match("PathPrefix", "/zero"), be("default-v1-80", 0)),
        rule(6, dp.Match(), be("default-v1-80"), error=500),
    )),
    dp.VirtualHost("*.example.com", (rule(0, dp.Match(), be("default-v1-80")),)),
    dp.VirtualHost(None, ()),
)),))

FILTERS = dp.GatewayConfig("default/gw", (dp.Server(8080, "HTTP", (dp.VirtualHost(None, (
    rule(0, dp.Match("PathPrefix", "/headers"), be("default-v1-80", request_headers=(
        dp.HeaderModifier(set=(("X-Backend", "1"),)))),
         request_headers=dp.HeaderModifier(set=(("X-Set", "a$b"),), add=(("X-Add", "x"),),
                                           remove=("X-Remove",)),
         response_headers=dp.HeaderModifier(set=(("X-RSet", "s"),), add=(("X-RAdd", "y"),),
                                            remove=("Server-Timing",))),
    rule(1, dp.Match("PathPrefix", "/redirect"), redirect=dp.Redirect(
        scheme="https", hostname="example.org",
        path=dp.PathModifier("ReplacePrefixMatch", "/new"), status_code=301)),
    rule(2, dp.Match("PathPrefix", "/full"), redirect=dp.Redirect(
        port=8443, path=dp.PathModifier("ReplaceFullPath", "/other"))),
    rule(3, dp.Match("PathPrefix", "/rewrite"), be("default-v1-80"), rewrite=dp.Rewrite(
        hostname="internal.example", path=dp.PathModifier("ReplacePrefixMatch", "/"))),
    rule(4, dp.Match("PathPrefix", "/mirror"), be("default-v1-80"), mirrors=(
        dp.Mirror(be("default-shadow-80")), dp.Mirror(be("default-sample-80"), 25))),
)),)),))

HTTPS = dp.GatewayConfig("default/gw", (
    dp.Server(443, "HTTPS", (
        dp.VirtualHost("a.example.com", (rule(0, dp.Match(), be("default-v1-80")),)),
        dp.VirtualHost("*.example.com", (rule(0, dp.Match(), be("default-v2-80")),)),
    ), (dp.Certificate((), "default.crt", "default.key"),
        dp.Certificate(("a.example.com",), "a.crt", "a.key"),
        dp.Certificate(("*.example.com", "other.example"), "wild.crt", "wild.key"))),
    dp.Server(80, "HTTP", (dp.VirtualHost(None, (rule(0, dp.Match(), redirect=dp.Redirect(
        scheme="https")),)),)),
))

CONFIGS = {"matching": (MATCHING, False), "filters": (FILTERS, False), "https": (HTTPS, True)}
CERTS = ("default", "a", "wild")


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_golden(name: str):
    cfg, ipv6 = CONFIGS[name]
    text = nginx.render(cfg, DIR, ipv6)
    path = GOLDEN / f"{name}.conf"
    if os.environ.get("NETLAB_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text()


def test_render_is_deterministic():
    assert nginx.render(FILTERS, DIR, False) == nginx.render(FILTERS, DIR, False)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("gateway-certs")
    for name in CERTS:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", f"/CN={name}", "-keyout", str(d / f"{name}.key"),
                        "-out", str(d / f"{name}.crt")], check=True, capture_output=True)
    return d


@pytest.mark.skipif(shutil.which("nginx") is None or shutil.which("openssl") is None,
                    reason="nginx or openssl is not installed (scripts/setup.sh installs both)")
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_nginx_accepts(name: str, certs: Path, tmp_path: Path):
    cfg, ipv6 = CONFIGS[name]
    for f in certs.iterdir():
        shutil.copy(f, tmp_path / f.name)
    for t in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp_path / "tmp" / t).mkdir(parents=True)
    conf = tmp_path / "nginx.conf"
    conf.write_text(nginx.render(cfg, tmp_path, ipv6))
    r = subprocess.run(["nginx", "-t", "-c", str(conf), "-p", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "[warn]" not in r.stderr.replace("the \"user\" directive", ""), r.stderr


# --- the spec's edge cases, one by one ------------------------------------------------------

_LINE = re.compile(r'rewrite "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)" break;')


def _unquote(s: str) -> str:
    return re.sub(r"\\(.)", r"\1", s)


def _pcre(regex: str) -> str:
    return regex.replace("\\z", "\\Z")  # the same meaning in Python's re


def rewrite(match_prefix: str, replace: str, path: str) -> str:
    """What the rendered `rewrite ... break` lines make of `path` (nginx's semantics: the
    first matching line replaces the URI and stops; $1 is the first group or "")."""
    r = rule(0, dp.Match("PathPrefix", match_prefix))
    for line in nginx._rewrite(r, dp.PathModifier("ReplacePrefixMatch", replace)):
        m = _LINE.fullmatch(line)
        assert m, line
        found = re.search(_pcre(_unquote(m.group(1))), path)
        if found:
            first = found.group(1) if found.re.groups else ""
            return _unquote(m.group(2)).replace("$1", first or "")
    return path


@pytest.mark.parametrize(("path", "match_prefix", "replace", "expected"), [
    # HTTPPathModifier.ReplacePrefixMatch's table
    ("/foo/bar", "/foo", "/xyz", "/xyz/bar"),
    ("/foo/bar", "/foo", "/xyz/", "/xyz/bar"),
    ("/foo/bar", "/foo/", "/xyz", "/xyz/bar"),
    ("/foo/bar", "/foo/", "/xyz/", "/xyz/bar"),
    ("/foo", "/foo", "/xyz", "/xyz"),
    ("/foo/", "/foo", "/xyz", "/xyz/"),
    ("/foo/bar", "/foo", "", "/bar"),
    ("/foo/", "/foo", "", "/"),
    ("/foo", "/foo", "", "/"),
    ("/foo/", "/foo", "/", "/"),
    ("/foo", "/foo", "/", "/"),
    # conformance/tests/httproute-rewrite-path.go
    ("/prefix/one/two", "/prefix/one", "/one", "/one/two"),
    ("/strip-prefix/three", "/strip-prefix", "/", "/three"),
    ("/strip-prefix", "/strip-prefix", "/", "/"),
    # the prefix "/" matches everything
    ("/foo", "/", "/xyz", "/xyz/foo"),
    ("/foo", "/", "/", "/foo"),
    ("/a.b", "/a.b", "/c", "/c"),
])
def test_replace_prefix_match(path: str, match_prefix: str, replace: str, expected: str):
    assert rewrite(match_prefix, replace, path) == expected


def _redirect_map(text: str) -> list[tuple[str, str]]:
    block = text.split("map $request_uri ", 1)[1].split("  }", 1)[0]
    return [(_unquote(k), _unquote(v)) for k, v in
            re.findall(r'"~((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)";', block)]


@pytest.mark.parametrize(("request_uri", "expected"), [
    ("/old/lemon?x=1", "/new/lemon?x=1"),
    ("/old", "/new"),
    ("/old?a", "/new?a"),
    ("/old/", "/new/"),
])
def test_redirect_prefix_from_the_raw_uri(request_uri: str, expected: str):
    cfg = dp.GatewayConfig("default/gw", (dp.Server(80, "HTTP", (dp.VirtualHost(None, (
        rule(0, dp.Match("PathPrefix", "/old/"), redirect=dp.Redirect(
            path=dp.PathModifier("ReplacePrefixMatch", "/new/"))),)),)),))
    for regex, value in _redirect_map(nginx.render(cfg, DIR, False)):
        m = re.search(_pcre(regex), request_uri)
        if m:
            got = value
            for n, group in enumerate(m.groups(), 1):
                got = got.replace(f"${n}", group or "")
            assert got == expected
            return
    pytest.fail("no map entry matched")


def _location(scheme: str | None, port: int | None, listener: str, listener_port: int) -> str:
    cfg = dp.GatewayConfig("default/gw", (dp.Server(listener_port, listener, (dp.VirtualHost(
        None, (rule(0, dp.Match(), redirect=dp.Redirect(scheme=scheme, hostname="example.org",
                                                         port=port)),)),),
        (dp.Certificate((), "c.crt", "c.key"),) if listener == "HTTPS" else ()),))
    return re.search(r'return 302 "([^"]*)";', nginx.render(cfg, DIR, False)).group(1)


@pytest.mark.parametrize(("scheme", "port", "listener", "listener_port", "expected"), [
    # conformance/tests/httproute-redirect-port-and-scheme.go
    (None, None, "HTTP", 80, "http://example.org$request_uri"),
    (None, 80, "HTTP", 80, "http://example.org$request_uri"),
    (None, 8080, "HTTP", 80, "http://example.org:8080$request_uri"),
    ("https", None, "HTTP", 80, "https://example.org$request_uri"),
    ("https", 443, "HTTP", 80, "https://example.org$request_uri"),
    ("https", 8443, "HTTP", 80, "https://example.org:8443$request_uri"),
    (None, None, "HTTP", 8080, "http://example.org:8080$request_uri"),
    ("https", None, "HTTP", 8080, "https://example.org$request_uri"),
    (None, None, "HTTPS", 443, "https://example.org$request_uri"),
    (None, 8443, "HTTPS", 443, "https://example.org:8443$request_uri"),
    ("http", None, "HTTPS", 443, "http://example.org$request_uri"),
    ("http", 8080, "HTTPS", 443, "http://example.org:8080$request_uri"),
])
def test_redirect_scheme_and_port(scheme, port, listener, listener_port, expected):
    assert _location(scheme, port, listener, listener_port) == expected


def test_literal_regex_is_literal():
    tricky = 'a.b*c+d?e(f)[g]{h}|i^j$k\\l"m n#o/p\u00e9'
    # nginx's PCRE matches bytes (no UTF mode): so does this pattern
    pattern = _pcre("^" + nginx._literal_regex(tricky) + "\\z").encode()
    assert re.search(pattern, tricky.encode())
    assert not re.search(pattern, tricky.replace(".", "x").encode())
    assert not re.search(pattern, (tricky + "\n").encode())


def test_values_keep_dollars_and_quotes_literal():
    assert nginx._value('a$b"c\\d') == '"a${netlab_dollar}b\\"c\\\\d"'
    with pytest.raises(ValueError):
        nginx._quote("a\nb")


@pytest.mark.parametrize(("name", "expected"), [
    ("a.example.com", "a.example.com"), ("x.y.example.com", "*.example.com"),
    ("example.com", None), ("other.test", None),
])
def test_virtual_host_choice(name: str, expected: str | None):
    hosts = (dp.VirtualHost("*.example.com", ()), dp.VirtualHost("a.example.com", ()),
             dp.VirtualHost("*.com.example", ()))
    found = nginx._virtual_host(hosts, name)
    assert (found[1].hostname if found else None) == expected


def test_virtual_host_longest_wildcard_then_catch_all():
    hosts = (dp.VirtualHost("*.example.com", ()), dp.VirtualHost("*.b.example.com", ()),
             dp.VirtualHost(None, ()))
    assert nginx._virtual_host(hosts, "a.b.example.com")[1].hostname == "*.b.example.com"
    assert nginx._virtual_host(hosts, "example.com")[1].hostname is None


def test_certificate_by_sni():
    certs = HTTPS.servers[0].certificates
    assert nginx._certificate(certs, "a.example.com").cert == "a.crt"
    assert nginx._certificate(certs, "b.example.com").cert == "wild.crt"
    assert nginx._certificate(certs, "example.com").cert == "default.crt"
    assert nginx._certificate(certs, None).cert == "default.crt"


def test_https_servers_per_name_with_their_certificate():
    text = nginx.render(HTTPS, DIR, True)
    blocks = text.split("  server {")[1:]
    by_name = {re.search(r'server_name "([^"]*)";', b).group(1): b for b in blocks
               if "listen 443" in b}
    assert set(by_name) == {"", "a.example.com", "*.example.com", "other.example"}
    assert "listen 443 ssl default_server;" in by_name[""]
    assert "listen [::]:443 ssl default_server;" in by_name[""]
    assert f"{DIR}/a.crt" in by_name["a.example.com"]
    assert f"{DIR}/wild.crt" in by_name["*.example.com"]
    assert f"{DIR}/default.crt" in by_name[""]
    assert "return 404;" in by_name[""]  # no virtual host for other names
    # a certificate's name without a route of its own serves the virtual host it falls in
    assert "location / { return 404; }" in by_name["other.example"]


def test_weights_split_by_percent_and_zero_never():
    text = nginx.render(MATCHING, DIR, False)
    split = re.search(r"split_clients \"\$request_id\" \$\w+ \{\n(.*?)\n  \}", text, re.S)
    assert split.group(1).split("\n") == ["    75% netlab_r2_b0;", "    * netlab_r2_b1;"]
    assert "netlab_r2_b2" not in text


def test_header_name_nginx_cannot_read_is_an_input_error():
    cfg = dp.GatewayConfig("default/gw", (dp.Server(80, "HTTP", (dp.VirtualHost(None, (
        rule(3, dp.Match(headers=(("Exact", "X.Dot", "v"),)), be("default-v1-80")),)),)),))
    with pytest.raises(InputError) as e:
        nginx.render(cfg, DIR, False)
    assert "HTTPRoute default/web" in str(e.value)
    assert "spec.rules[3].matches.headers[0].name" in str(e.value)


def test_prefix_rewrite_needs_a_prefix_match():
    cfg = dp.GatewayConfig("default/gw", (dp.Server(80, "HTTP", (dp.VirtualHost(None, (
        rule(0, dp.Match("RegularExpression", "/a.*"), be("default-v1-80"),
             rewrite=dp.Rewrite(path=dp.PathModifier("ReplacePrefixMatch", "/b"))),)),)),))
    with pytest.raises(InputError, match="ReplacePrefixMatch"):
        nginx.render(cfg, DIR, False)


def test_https_without_certificate_is_refused():
    cfg = dp.GatewayConfig("default/gw", (dp.Server(443, "HTTPS", ()),))
    with pytest.raises(ValueError, match="no certificate"):
        nginx.render(cfg, DIR, False)


@pytest.mark.parametrize("weights", [(1, 1, 1), (1000000, 1000000, 1),
                                     (333335, 333335, 333329, 1), (1, 2, 3, 4, 5, 6, 7)])
def test_split_shares_never_exceed_100(weights: tuple[int, ...]):
    cfg = dp.GatewayConfig("default/gw", (dp.Server(80, "HTTP", (dp.VirtualHost(None, (
        rule(0, dp.Match(), *(be(f"u{i}", w) for i, w in enumerate(weights))),)),)),))
    text = nginx.render(cfg, DIR, False)
    shares = [float(s) for s in re.findall(r"    ([0-9.]+)% netlab_r0_b\d+;", text)]
    assert sum(shares) <= 100 and all(s > 0 for s in shares)
    assert abs(shares[0] - weights[0] * 100 / sum(weights)) < 0.01
    assert f"* netlab_r0_b{len(weights) - 1};" in text
