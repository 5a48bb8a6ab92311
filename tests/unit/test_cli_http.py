"""`netlab http` against a fake lab: curl's options become Lab.http's arguments, bad ones
are exit 2 naming the option and its form, and the answer is printed as curl -v would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from netlab.cli import app
from netlab.cli import traffic as cli_traffic
from netlab.cli.traffic import parse_header, parse_resolve
from netlab.http_client import HttpResult


def answer(status: int | None = 200) -> HttpResult:
    r = HttpResult("http://shop.example/a?x=1", "172.18.0.200", status,
                   "OK" if status == 200 else "Not Found" if status else "",
                   headers={"Content-Type": "application/json", "X-Netlab-Pod": "default/web-1"},
                   body="{}", answered_by="default/web-1" if status else None,
                   seen_client="10.244.0.5",
                   seen_headers={"host": "shop.example", "x-forwarded-for": "172.18.0.254",
                                 "x-canary": "always", "user-agent": "netlab-http"},
                   error=None if status else "TimeoutError: timed out", seconds=0.0031,
                   seen_method="GET", seen_path="/a?x=1", seen_host="shop.example",
                   seen_query={"x": ["1"]}, request_line="GET /a?x=1 HTTP/1.1",
                   sent_headers={"Host": "shop.example", "User-Agent": "netlab-http",
                                 "Accept": "*/*", "X-Canary": "always"},
                   version="HTTP/1.1")
    return r


class FakeLab:
    def __init__(self, result: HttpResult) -> None:
        self.result = result
        self.calls: list[tuple[tuple, dict[str, Any]]] = []

    def http(self, *args: Any, **kwargs: Any) -> HttpResult:
        self.calls.append((args, kwargs))
        return self.result

    def http_hints(self, url: str, to: str | None = None) -> list[str]:
        return [f"no HTTPRoute attached to Gateway infra/public is for host {url!r}"]


@pytest.fixture
def run(monkeypatch):
    """run(*args, status=200) -> (exit code, stdout, stderr, the Lab.http calls)."""

    def _run(*args: str, status: int | None = 200, stdin: str | None = None):
        lab = FakeLab(answer(status))
        monkeypatch.setattr(cli_traffic, "open_lab", lambda name: lab)
        r = CliRunner().invoke(app, ["http", *args], input=stdin)
        return r.exit_code, r.stdout, r.stderr, lab.calls

    return _run


def test_defaults_are_a_get_through_the_ingress_controller(run):
    code, out, _, calls = run("http://shop.example/a?x=1")
    assert code == 0, out
    (args, kwargs), = calls
    assert args == ("http://shop.example/a?x=1", "external", "GET", {})
    assert kwargs == {"family": None, "data": None, "to": None, "resolve": None,
                      "cacert": None, "insecure": False}


def test_curl_options_become_lab_http_arguments(run, tmp_path: Path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    code, out, _, calls = run(
        "https://shop.example/", "--from", "client", "-H", "X-Canary: always",
        "-H", "Accept: text/plain", "--resolve", "shop.example:443:172.18.0.201",
        "--resolve", "api.example:8443:[fd00::1]", "--cacert", str(ca), "-k",
        "--to", "gateway/infra/public", "-6")
    assert code == 0, out
    (args, kwargs), = calls
    assert args == ("https://shop.example/", "client", "GET",
                    {"X-Canary": "always", "Accept": "text/plain"})
    assert kwargs == {"family": "IPv6", "data": None, "to": "gateway/infra/public",
                      "resolve": {"shop.example:443": "172.18.0.201",
                                  "api.example:8443": "fd00::1"},
                      "cacert": str(ca), "insecure": True}


def test_data_makes_a_post_as_in_curl(run, tmp_path: Path):
    _, _, _, calls = run("-d", "name=ada", "http://shop.example/users")
    (args, kwargs), = calls
    assert args[2:] == ("POST", {"Content-Type": "application/x-www-form-urlencoded"})
    assert kwargs["data"] == b"name=ada"
    f = tmp_path / "u.json"
    f.write_bytes(b'{"name": "ada"}\n')
    _, _, _, calls = run("-X", "put", "-H", "content-type: application/json", "-d", f"@{f}",
                         "http://shop.example/u/1")
    (args, kwargs), = calls
    assert args[2:] == ("PUT", {"content-type": "application/json"})
    assert kwargs["data"] == b'{"name": "ada"}\n'  # as it is, newline and all
    _, _, _, calls = run("-d", "@-", "http://shop.example/", stdin="from stdin")
    assert calls[0][1]["data"] == b"from stdin"


@pytest.mark.parametrize(("args", "message"), [
    (["-H", "X-Canary always"], "-H/--header 'X-Canary always': the form is 'Name: value'"),
    (["-H", "Bad Name: x"], "-H/--header 'Bad Name: x': the form is 'Name: value'"),
    (["--resolve", "shop.example:443"], "--resolve 'shop.example:443': the form is "
                                        "HOST:PORT:ADDRESS"),
    (["--resolve", "shop.example:443:nowhere"], "--resolve 'shop.example:443:nowhere': the "
                                                "form is HOST:PORT:ADDRESS"),
    (["--to", "gateway"], "--to 'gateway': the form is ingress or gateway/[NAMESPACE/]NAME"),
    (["--to", "gateway/a/b/c"], "--to 'gateway/a/b/c': the form is ingress or"),
    (["-d", "@/nonexistent/body"], "-d/--data @/nonexistent/body: cannot read"),
])
def test_bad_options_are_exit_2_naming_the_option_and_its_form(run, args, message):
    code, out, err, calls = run(*args, "http://shop.example/")
    assert code == 2, out
    assert message in " ".join(err.split()), err
    assert calls == []  # nothing was sent


def test_a_missing_cacert_is_exit_2(run, tmp_path: Path):
    code, _, err, calls = run("--cacert", str(tmp_path / "nope.pem"), "https://shop.example/")
    assert code == 2 and "does not exist" in err and calls == []


def test_table_shows_what_the_backend_received(run):
    code, out, err, _ = run("http://shop.example/a?x=1")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("http://shop.example/a?x=1 via 172.18.0.200: 200 OK, answered "
                               "by default/web-1 in 3.1 ms")
    assert "  the backend received: GET /a?x=1, Host shop.example" in lines
    assert "    x-forwarded-for: 172.18.0.254" in lines
    assert not any("x-canary" in line for line in lines)  # not a forwarding header
    assert err == ""


def test_verbose_shows_the_exchange_on_stderr_and_every_header(run):
    code, out, err, _ = run("-v", "http://shop.example/a?x=1")
    assert code == 0
    assert "    x-canary: always" in out.splitlines()
    assert err.splitlines() == [
        "* from external to 172.18.0.200", "> GET /a?x=1 HTTP/1.1", "> Host: shop.example",
        "> User-Agent: netlab-http", "> Accept: */*", "> X-Canary: always", ">",
        "< HTTP/1.1 200 OK", "< Content-Type: application/json",
        "< X-Netlab-Pod: default/web-1", "<"]


def test_json_is_the_whole_result(run):
    code, out, _, _ = run("-o", "json", "http://shop.example/a?x=1")
    assert code == 0
    doc = json.loads(out)
    assert doc == answer().to_json()
    assert doc["seen_query"] == {"x": ["1"]} and doc["seen_path"] == "/a?x=1"


@pytest.mark.parametrize(("status", "code"), [(200, 0), (302, 0), (404, 1), (503, 1),
                                              (None, 1)])
def test_exit_code_follows_the_status(run, status, code):
    assert run("http://shop.example/", status=status)[0] == code


def test_help_teaches_with_examples():
    r = CliRunner().invoke(app, ["http", "--help"])
    assert r.exit_code == 0
    text = " ".join(r.output.split())
    for example in ("-H 'X-Canary: always'", "-d 'name=ada'",
                    "--resolve shop.example:80:172.18.0.201", "--cacert ca.pem https://"):
        assert example in text, example


@pytest.mark.parametrize(("text", "parsed"), [
    ("X-Canary: always", ("X-Canary", "always")),
    ("x-empty:", ("x-empty", "")),
    ("X-Empty;", ("X-Empty", "")),
    ("Cookie: a=b; c=d", ("Cookie", "a=b; c=d")),
    ("no colon", None),
    (": value", None),
    ("Bad Name: v", None),
    ("X-A: one\r\nX-B: two", None),
])
def test_parse_header(text: str, parsed: tuple[str, str] | None):
    assert parse_header(text) == parsed


@pytest.mark.parametrize(("text", "parsed"), [
    ("shop.example:443:172.18.0.200", ("shop.example:443", "172.18.0.200")),
    ("Shop.Example:80:[fd00:18::c8]", ("shop.example:80", "fd00:18::c8")),
    ("shop.example:80:fd00:18::c8", ("shop.example:80", "fd00:18::c8")),
    ("[fd00::1]:8080:10.0.0.1", ("fd00::1:8080", "10.0.0.1")),
    ("shop.example:443", None),
    ("shop.example:http:1.2.3.4", None),
    ("shop.example:0:1.2.3.4", None),
    ("shop.example:443:not-an-address", None),
])
def test_parse_resolve(text: str, parsed: tuple[str, str] | None):
    assert parse_resolve(text) == parsed


def test_a_failed_request_shows_the_controllers_hints(run):
    code, out, _, _ = run("http://blog.example/", status=404)
    assert code == 1
    assert "hint: no HTTPRoute attached to Gateway infra/public" in out
    code, out, _, _ = run("http://blog.example/")
    assert code == 0 and "hint" not in out
