"""One Gateway's data plane as nginx.conf (pure): dataplane.GatewayConfig in, text out.

nginx's locations match paths only, and Gateway API rules also match method, headers and
query parameters, in the precedence order the controller already settled. So each
condition a virtual host's rules test becomes a `map` to "1"/"0"; the flags of a virtual
host are joined into one string, and an ordered regex `map` over it names the first rule
whose flags are all set (the spec's "first match wins"). `location /` then jumps to that
rule's named location (`error_page 418 = @$target; return 418;`): a named location keeps
the request as it came (method, body, URI), so the upstream sees the client's own URI
unless a filter rewrites it.

A rule's backends are chosen per request by `split_clients` on $request_id; each backend
has its own named location (its own header filters, or its error status). Paths are
matched on the normalized $uri (percent-decoded, dot segments resolved, slashes merged),
as Envoy matches them; what goes into a Location header is built from the raw
$request_uri, never from the decoded $uri (a decoded %0d%0a would split the header).

Header filters (HTTPHeaderFilter): request headers are proxy_set_header lines (an empty
value drops the header; `add` joins the client's value and the new one with ',', as the
conformance tests expect); response headers are proxy_hide_header + add_header ... always.
nginx core cannot tell an absent request header from an empty one, so a header regex that
matches "" also matches a request without that header. Query parameters are matched on
their raw (still percent-encoded) values. Mirrors (nginx's `mirror`, which needs a URI)
go through internal locations under /.netlab-gateway-mirror/ and send the client's
original URI.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from netlab import nginx_conf
from netlab.errors import InputError
from netlab.gateway import dataplane as dp

WELL_KNOWN_PORTS = {"http": 80, "https": 443}
NO_MATCH = "netlab_404"  # the named location of requests no rule matches
DISPATCH_STATUS = 418  # `return`ed only to jump to a named location through error_page
MIRROR_PREFIX = "/.netlab-gateway-mirror"  # internal locations of mirrors (nginx's `mirror`
#                                            takes a URI, not a named location)
END = "\\z"  # the end of the subject (PCRE's `$` also matches before a final newline)
_VAR_NAME = re.compile(r"[A-Za-z0-9_-]+")  # header names nginx can read as $http_NAME
_UPSTREAM_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_REGEX_PLAIN = re.compile(r"[A-Za-z0-9_/-]")  # characters a regex may take literally
_BASE_HEADERS = (  # what every proxied request carries (as ingress.py sets them)
    ("X-Real-IP", "$remote_addr"),
    ("X-Forwarded-For", "$remote_addr"),
    ("X-Forwarded-Host", "$host"),
    ("X-Forwarded-Proto", "$scheme"),
    ("X-Forwarded-Port", "$server_port"),
)


# --- quoting --------------------------------------------------------------------------------

def _quote(text: str) -> str:
    """A double-quoted nginx string whose characters all stay literal (regexes and plain
    parameters; nginx's parser keeps a backslash before anything but `"`, `'` and `\\`)."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise ValueError(f"control character in {text!r}")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _value(text: str) -> str:
    """A quoted nginx value where variables are expanded: a literal `$` becomes
    ${netlab_dollar} (a `geo` variable whose value is "$"; nginx has no escape for it)."""
    return _quote(text).replace("$", "${netlab_dollar}")


def _literal_regex(text: str) -> str:
    """`text` as a PCRE matching exactly those bytes (nginx compiles without UTF mode)."""
    out = []
    for byte in text.encode():
        c = chr(byte)
        if _REGEX_PLAIN.match(c):
            out.append(c)
        elif 0x20 < byte < 0x7F:
            out.append("\\" + c)  # PCRE: a backslash before punctuation makes it literal
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out)


def _var_name(header: str) -> str | None:
    """The suffix of nginx's $http_/$upstream_http_ variable of a header, or None when the
    name has characters nginx's variables cannot spell."""
    return header.lower().replace("-", "_") if _VAR_NAME.fullmatch(header) else None


# --- header filters -------------------------------------------------------------------------

@dataclass
class _HeaderState:
    """What a header becomes after one or more HTTPHeaderFilters: `replace` drops what the
    other side sent (the header is then `values` joined, or absent if none), otherwise the
    `values` are appended to what it sent."""

    name: str  # as first written
    replace: bool = False
    values: list[str] = field(default_factory=list)


def _apply(states: dict[str, _HeaderState], mod: dp.HeaderModifier | None) -> None:
    """Apply one filter: remove, then set, then add (Envoy's order: removals first)."""
    if mod is None:
        return
    for name in mod.remove:
        states[name.lower()] = _HeaderState(states.get(name.lower(), _HeaderState(name)).name,
                                            True)
    for name, value in mod.set:
        states[name.lower()] = _HeaderState(states.get(name.lower(), _HeaderState(name)).name,
                                            True, [value])
    for name, value in mod.add:
        states.setdefault(name.lower(), _HeaderState(name)).values.append(value)


def _header_states(*mods: dp.HeaderModifier | None) -> dict[str, _HeaderState]:
    states: dict[str, _HeaderState] = {}
    for mod in mods:
        _apply(states, mod)
    return states


# --- the renderer ---------------------------------------------------------------------------

@dataclass
class _Where:
    """The rule being rendered, for errors."""

    rule: dp.Rule

    def error(self, what: str, message: str) -> InputError:
        return InputError(message, obj=f"HTTPRoute {self.rule.route}",
                          field=f"spec.rules[{self.rule.index}]{what}")


class _Renderer:
    def __init__(self, cfg: dp.GatewayConfig, directory: Path, ipv6: bool) -> None:
        self.cfg, self.d, self.ipv6 = cfg, directory, ipv6
        self.http: list[str] = []  # maps and split_clients, in order of creation
        self.conditions: dict[tuple[str, str], str] = {}  # (source, regex) -> variable
        self.query_vars: dict[str, str] = {}  # query parameter name -> variable
        self.add_vars: dict[tuple[str, str], str] = {}  # (source, appended) -> variable
        self.upstreams: dict[str, tuple[str, ...]] = {}
        self.dispatch: dict[tuple[int, int], str] = {}  # (server, host) -> target variable
        self.count = 0

    def _var(self, kind: str) -> str:
        self.count += 1
        return f"$netlab_{kind}{self.count}"

    # conditions -----------------------------------------------------------------------

    def _condition(self, source: str, regex: str) -> str:
        """A variable that is "1" when `source` matches `regex`, else "0"."""
        key = (source, regex)
        if key not in self.conditions:
            var = self.conditions[key] = self._var("m")
            self.http.append(f"  map {_quote(source)} {var} {{ {_quote('~' + regex)} 1; "
                             "default 0; }")
        return self.conditions[key]

    def _query(self, name: str) -> str:
        """A variable holding "=" + the raw value of the first query parameter called
        `name` (case-sensitive, unlike nginx's $arg_), or "" when there is none."""
        if name not in self.query_vars:
            var = self.query_vars[name] = self._var("q")
            n = _literal_regex(name)
            regex = f"~^(?:(?!{n}(?:=|&|\\z))[^&]*&)*{n}(?:=([^&]*))?(?:&|\\z)"
            self.http.append(f"  map $args {var} {{ {_quote(regex)} \"=$1\"; default \"\"; }}")
        return self.query_vars[name]

    def _match(self, rule: dp.Rule) -> list[str]:
        """The condition variables that must all be "1" for the rule's match
        (HTTPRouteMatch: path, method, headers and query parameters ANDed)."""
        m, where, out = rule.match, _Where(rule), []
        if m.path_type == "Exact":
            out.append(self._condition("$uri", f"^{_literal_regex(m.path)}\\z"))
        elif m.path_type == "PathPrefix":
            # element-wise: /foo matches /foo and /foo/bar, never /foobar; a trailing / of
            # the prefix is ignored (HTTPPathMatch PathPrefix)
            prefix = m.path.rstrip("/")
            if prefix:
                out.append(self._condition("$uri", f"^{_literal_regex(prefix)}(?:/|\\z)"))
        else:
            out.append(self._condition("$uri", f"^(?:{m.path})\\z"))
        if m.method is not None:
            out.append(self._condition("$request_method", f"^{_literal_regex(m.method)}\\z"))
        seen: set[str] = set()
        for i, (kind, name, value) in enumerate(m.headers):
            if name.lower() in seen:  # only the first of equivalent names counts (the spec)
                continue
            seen.add(name.lower())
            var = _var_name(name)
            if var is None:
                raise where.error(f".matches.headers[{i}].name",
                                  f"header name {name!r} cannot be matched by nginx")
            out.append(self._condition(f"$http_{var}", _value_regex(kind, value)))
        seen = set()
        for kind, name, value in m.query:
            if name in seen:
                continue
            seen.add(name)
            out.append(self._condition(self._query(name), "^=" + _value_regex(kind, value)[1:]))
        return out

    # dispatch -------------------------------------------------------------------------

    def _dispatch(self, key: tuple[int, int], host: dp.VirtualHost) -> str:
        """The variable naming the location of the first rule of `host` that matches."""
        if key in self.dispatch:
            return self.dispatch[key]
        rules = [(rule, self._match(rule)) for rule in host.rules]
        flags = list(dict.fromkeys(v for _, conds in rules for v in conds))
        targets = [self._targets(key, i, rule) for i, rule in enumerate(host.rules)]
        var = self.dispatch[key] = self._var("rule")
        # "|" first: a virtual host whose rules test nothing still has a source to map
        lines = [f"  map {_quote('|' + ''.join(flags))} {var} {{"]
        for (_rule, conds), target in zip(rules, targets, strict=True):
            pattern = "".join("1" if f in conds else "." for f in flags)
            lines.append(f"    {_quote('~^[|]' + pattern + '$')} {target};")
        lines += [f"    default {NO_MATCH};", "  }"]
        self.http += lines
        return var

    def _targets(self, key: tuple[int, int], i: int, rule: dp.Rule) -> str:
        """What the dispatch map gives for rule `i`: its location's name, or, with several
        backends, a split_clients variable choosing one by weight (a weight of 0 never)."""
        if not _splits(rule):
            return _location_name(i)
        backends = _weighted(rule)
        var = self._var("split")
        total, done, edge = sum(b.weight for _, b in backends), 0, 0.0
        lines = [f"  split_clients \"$request_id\" {var} {{"]
        for n, (k, b) in enumerate(backends):
            if n == len(backends) - 1:
                lines.append(f"    * {_location_name(i, k)};")
                continue
            # split_clients takes two decimals: round the cumulative edges, so the shares
            # never add up to more than 100% (a share rounded to 0 is left out)
            done += b.weight
            share = round(round(done * 100 / total, 2) - edge, 2)
            if share > 0:
                lines.append(f"    {share:g}% {_location_name(i, k)};")
                edge = round(edge + share, 2)
        self.http += [*lines, "  }"]
        return var

    # locations ------------------------------------------------------------------------

    def _locations(self, server: dp.Server, host: dp.VirtualHost) -> list[str]:
        out = [f"    location @{NO_MATCH} {{ return 404; }}"]
        for i, rule in enumerate(host.rules):
            backends = _weighted(rule)
            if not _splits(rule):
                body = self._rule_body(server, i, rule, backends[0][1] if backends else None)
                out += _block(f"location @{_location_name(i)}", body)
            else:
                for k, b in backends:
                    out += _block(f"location @{_location_name(i, k)}",
                                  self._rule_body(server, i, rule, b))
            for j, mirror in enumerate(rule.mirrors):
                if mirror.percent > 0:  # 0: never mirrored
                    out += self._mirror(i, j, rule, mirror)
        return out

    def _rule_body(self, server: dp.Server, i: int, rule: dp.Rule,
                   backend: dp.Backend | None) -> list[str]:
        """A rule's location with one backend chosen (or none): its filters, then the
        proxying (or the status the rule, the backend or the redirect answers)."""
        where = _Where(rule)
        response = self._response_headers(where, rule.response_headers,
                                          backend.response_headers if backend else None)
        if rule.error is not None:
            return [*response, f"return {rule.error};"]
        if rule.redirect is not None:
            return [*response, *self._redirect(server, rule)]
        if backend is None:  # no backendRefs, or all weights 0 (HTTPBackendRef weight)
            return [*response, "return 500;"]
        if backend.error is not None:
            return [*response, f"return {backend.error};"]
        self._upstream(backend, where)
        if not backend.servers:  # no ready endpoints
            return [*response, "return 503;"]
        lines = [f"mirror {_mirror_uri(i, j)};" for j, m in enumerate(rule.mirrors)
                 if m.percent > 0]
        host = "$netlab_host"
        if rule.rewrite is not None:
            if rule.rewrite.hostname is not None:
                host = _value(rule.rewrite.hostname)
            if rule.rewrite.path is not None:
                lines += _rewrite(rule, rule.rewrite.path)
        lines += self._request_headers(where, host, rule.request_headers,
                                       backend.request_headers)
        return [*lines, *response, f"proxy_pass http://{backend.upstream};"]

    def _mirror(self, i: int, j: int, rule: dp.Rule, mirror: dp.Mirror) -> list[str]:
        """The internal location the rule's j-th mirror subrequest goes to: the request as
        the client sent it (URI and body; the rule's request header filter applied), to the
        mirror's backend; nginx discards the answer (HTTPRequestMirrorFilter)."""
        b = mirror.backend
        body = ["internal;"]
        if mirror.percent < 100:
            var = self._var("mirror")
            self.http.append(f"  split_clients \"$request_id\" {var} {{ "
                             f"{mirror.percent}% 1; * \"\"; }}")
            body.append(f"if ({var} = \"\") {{ return 204; }}")
        if b.error is not None or not b.servers:
            body.append(f"return {b.error or 503};")
        else:
            self._upstream(b, _Where(rule))
            body += self._request_headers(_Where(rule), "$netlab_host", rule.request_headers,
                                          b.request_headers)
            body.append(f"proxy_pass http://{b.upstream}$request_uri;")
        return _block(f"location = {_mirror_uri(i, j)}", body)

    def _upstream(self, b: dp.Backend, where: _Where) -> None:
        if not _UPSTREAM_NAME.fullmatch(b.upstream):
            raise where.error(".backendRefs", f"upstream name {b.upstream!r} is not one nginx "
                              "accepts (letters, digits, '.', '_', '-')")
        self.upstreams.setdefault(b.upstream, b.servers)

    def _request_headers(self, where: _Where, host: str, *mods: dp.HeaderModifier | None
                         ) -> list[str]:
        """proxy_set_header lines (all of them in every location: nginx inherits none from
        the outer level once a location has its own)."""
        headers = {"host": ("Host", host)} | {n.lower(): (n, v) for n, v in _BASE_HEADERS}
        headers["connection"] = ("Connection", '""')  # keep the upstream connection
        for key, state in _header_states(*mods).items():
            if state.replace:
                headers[key] = (state.name, _value(",".join(state.values)))
            else:
                source = f"$http_{_var_of(where, 'requestHeaderModifier', state)}"
                headers[key] = (state.name, self._appended(source, state.values))
        return [f"proxy_set_header {name} {value};" for name, value in headers.values()]

    def _response_headers(self, where: _Where, *mods: dp.HeaderModifier | None
                          ) -> list[str]:
        """proxy_hide_header drops what the upstream sent; add_header ... always adds ours,
        to every status (a missing upstream header and nothing to add: no header)."""
        lines = []
        for state in _header_states(*mods).values():
            lines.append(f"proxy_hide_header {_quote(state.name)};")
            if state.replace and state.values:
                lines.append(f"add_header {_quote(state.name)} "
                             f"{_value(','.join(state.values))} always;")
            elif not state.replace:
                source = f"$upstream_http_{_var_of(where, 'responseHeaderModifier', state)}"
                lines.append(f"add_header {_quote(state.name)} "
                             f"{self._appended(source, state.values)} always;")
        return lines

    def _appended(self, source: str, values: list[str]) -> str:
        """A variable: `values` joined with ',', after `source`'s value when it has one."""
        added = _value(",".join(values))[1:-1]
        key = (source, added)
        if key not in self.add_vars:
            var = self.add_vars[key] = self._var("add")
            self.http.append(f"  map {source} {var} {{ \"\" \"{added}\"; "
                             f"default \"{source},{added}\"; }}")
        return self.add_vars[key]

    def _redirect(self, server: dp.Server, rule: dp.Rule) -> list[str]:
        """`return CODE LOCATION` (HTTPRequestRedirectFilter). Scheme and port are known
        here: no port given means the scheme's well-known one when a scheme is given, else
        the listener's; a well-known port is left out of Location."""
        r = rule.redirect
        assert r is not None
        listener_scheme = "https" if server.protocol == "HTTPS" else "http"
        scheme = r.scheme or listener_scheme
        port = r.port if r.port is not None else (
            WELL_KNOWN_PORTS.get(r.scheme, server.port) if r.scheme else server.port)
        authority = _value(r.hostname)[1:-1] if r.hostname else "$host"
        if WELL_KNOWN_PORTS.get(scheme) != port:
            authority += f":{port}"
        path = "$request_uri" if r.path is None else self._redirect_path(rule, r.path)
        return [f"return {r.status_code} \"{scheme}://{authority}{path}\";"]

    def _redirect_path(self, rule: dp.Rule, mod: dp.PathModifier) -> str:
        """The redirect's path and query, from the raw $request_uri."""
        value = _value(mod.value)[1:-1]
        if mod.type == "ReplaceFullPath":
            return f"{value}$is_args$args"
        prefix = _prefix(rule, "redirect")
        replacement = mod.value.rstrip("/")
        var = self._var("redirect")
        p = _literal_regex(prefix)
        rep = _value(replacement)[1:-1]
        with_rest, bare = _quote(f"~^{p}(/[^?]*)([?].*)?\\z"), _quote(f"~^{p}([?].*)?\\z")
        self.http += [
            f"  map $request_uri {var} {{",
            f"    {with_rest} \"{rep}$1$2\";",
            f"    {bare} \"{rep or '/'}$1\";",
            # the raw path spells the prefix differently (percent-encoded, dot segments)
            f"    default \"{rep or '/'}$is_args$args\";",
            "  }"]
        return var

    # servers --------------------------------------------------------------------------

    def _server_blocks(self, s: int, server: dp.Server) -> list[str]:
        ssl = server.protocol == "HTTPS"
        if ssl and not server.certificates:
            raise ValueError(f"Gateway {self.cfg.gateway}: port {server.port} is HTTPS but "
                             "has no certificate")
        names = [h.hostname for h in server.hosts if h.hostname is not None]
        if ssl:
            names += [n for c in server.certificates for n in c.hostnames]
        out = self._server_block(s, server, None, default=True)
        for name in dict.fromkeys(names):
            out += self._server_block(s, server, name, default=False)
        return out

    def _server_block(self, s: int, server: dp.Server, name: str | None,
                      default: bool) -> list[str]:
        listen = f"{server.port}" + (" ssl" if server.protocol == "HTTPS" else "") + \
            (" default_server" if default else "")
        lines = [f"    listen {listen};", *([f"    listen [::]:{listen};"] if self.ipv6
                                              else [])]
        lines.append(f"    server_name {_quote(name or '')};")
        if server.protocol == "HTTPS":
            cert = _certificate(server.certificates, name)
            lines.append(f"    ssl_certificate {_quote(str(self.d / cert.cert))}; "
                         f"ssl_certificate_key {_quote(str(self.d / cert.key))};")
        found = _virtual_host(server.hosts, name)
        if found is None:
            lines.append("    location / { return 404; }")
        else:
            h, host = found
            target = self._dispatch((s, h), host)
            lines.append(f"    location / {{ error_page {DISPATCH_STATUS} = @{target}; "
                         f"return {DISPATCH_STATUS}; }}")
            lines += self._locations(server, host)
        return ["  server {", *lines, "  }"]

    def text(self) -> str:
        servers: list[str] = []
        for s, server in enumerate(self.cfg.servers):
            servers += self._server_blocks(s, server)
        d = self.d
        lines = [
            *nginx_conf.head(d, f"for Gateway {self.cfg.gateway}"),
            "  variables_hash_bucket_size 128;", "  variables_hash_max_size 4096;",
            "  proxy_headers_hash_bucket_size 128;", "  proxy_headers_hash_max_size 4096;",
            "  proxy_connect_timeout 2s;",
            # connections to backends are kept and reused (ingress-nginx's
            # upstream-keepalive-connections): a new connection per request costs the
            # overlay's handshake, and the Gateway's throughput with it (bench/gateway.py)
            "  proxy_http_version 1.1;",
            "  geo $netlab_dollar { default \"$\"; }",
            # the Host header as the client sent it, port included (the conformance suite's
            # "very.specific.com:1234"); $host (name only) for a request without one
            "  map $http_host $netlab_host { \"\" $host; default $http_host; }",
        ]
        lines += self.http
        for name, members in sorted(self.upstreams.items()):
            if members:
                lines.append(f"  upstream {name} {{ " + " ".join(f"server {m};" for m in members)
                             + " keepalive 32; }")
            else:  # no endpoints: nginx needs a server; the location answers 503 itself
                lines.append(f"  upstream {name} {{ server 127.0.0.1:1 down; }}")
        lines += servers
        lines.append("}")
        return "\n".join(lines) + "\n"


# --- helpers --------------------------------------------------------------------------------

def _value_regex(kind: dp.MatchType, value: str) -> str:
    """A header or query value match: Exact (case-sensitive) or a full regex match."""
    return f"^{_literal_regex(value)}\\z" if kind == "Exact" else f"^(?:{value})\\z"


def _var_of(where: _Where, filter_name: str, state: _HeaderState) -> str:
    var = _var_name(state.name)
    if var is None:
        raise where.error(f".filters[{filter_name}].add", f"header {state.name!r}: nginx "
                          "cannot append to a header whose name has characters other than "
                          "letters, digits, '-' and '_'")
    return var


def _splits(rule: dp.Rule) -> bool:
    """Whether the rule's requests are split between backends by weight."""
    return rule.error is None and rule.redirect is None and len(_weighted(rule)) > 1


def _weighted(rule: dp.Rule) -> list[tuple[int, dp.Backend]]:
    """The backends a request may go to, with their indexes (weight 0: never)."""
    return [(k, b) for k, b in enumerate(rule.backends) if b.weight > 0]


def _location_name(rule: int, backend: int | None = None) -> str:
    return f"netlab_r{rule}" + (f"_b{backend}" if backend is not None else "")


def _mirror_uri(rule: int, mirror: int) -> str:
    return f"{MIRROR_PREFIX}/r{rule}-m{mirror}"


def _block(head: str, body: Iterable[str]) -> list[str]:
    return [f"    {head} {{", *(f"      {line}" for line in body), "    }"]


def _prefix(rule: dp.Rule, what: str) -> str:
    """The matched prefix ReplacePrefixMatch replaces (the CRD allows it only with a
    PathPrefix match; an Exact path is its own prefix), without its trailing '/'."""
    if rule.match.path_type == "RegularExpression":
        raise _Where(rule).error(f".filters[{what}].path", "ReplacePrefixMatch needs a "
                                 "PathPrefix match, not a RegularExpression one")
    return rule.match.path.rstrip("/")


def _rewrite(rule: dp.Rule, mod: dp.PathModifier) -> list[str]:
    """`rewrite ... break` lines for HTTPURLRewriteFilter's path (on the normalized $uri;
    nginx escapes the new URI when it sends it upstream; the query is kept)."""
    value = _value(mod.value)
    if mod.type == "ReplaceFullPath":
        return [f"rewrite ^ {value} break;"]
    # ReplacePrefixMatch: /prefix/one -> /one for prefix /prefix and "/one"; the table in
    # HTTPPathModifier's docs: trailing slashes of both ignored, "" or "/" strip the prefix
    prefix, replacement = _prefix(rule, "urlRewrite"), mod.value.rstrip("/")
    p, rep = _literal_regex(prefix), _value(replacement)[1:-1]
    if not prefix:
        return [f"rewrite {_quote('(?s)^(.*)')} \"{rep}$1\" break;"] if replacement else []
    if replacement:
        return [f"rewrite {_quote(f'(?s)^{p}(/.*)?' + END)} \"{rep}$1\" break;"]
    return [f"rewrite {_quote(f'(?s)^{p}(/.*)' + END)} \"$1\" break;",
            f"rewrite {_quote(f'^{p}' + END)} \"/\" break;"]


def _covers(pattern: str, name: str) -> bool:
    """Whether hostname `pattern` ("a.b", "*.b") matches `name` (a hostname or itself a
    wildcard): a wildcard matches one or more labels, never the bare suffix."""
    if pattern == name:
        return True
    return pattern.startswith("*.") and name.endswith(pattern[1:]) and \
        len(name) > len(pattern) - 1


def _virtual_host(hosts: tuple[dp.VirtualHost, ...], name: str | None
                  ) -> tuple[int, dp.VirtualHost] | None:
    """The virtual host serving requests for `name` (None: any other host): the exact one,
    then the longest wildcard, then the one without hostname."""
    indexed = list(enumerate(hosts))
    if name is not None:
        exact = [(i, h) for i, h in indexed if h.hostname == name]
        if exact:
            return exact[0]
        wild = [(i, h) for i, h in indexed if h.hostname and _covers(h.hostname, name)]
        if wild:
            return max(wild, key=lambda ih: len(ih[1].hostname or ""))
    return next(((i, h) for i, h in indexed if h.hostname is None), None)


def _certificate(certs: tuple[dp.Certificate, ...], name: str | None) -> dp.Certificate:
    """The certificate presented for SNI `name`: one listing it, then one whose wildcard
    covers it, then the port's first."""
    if name is not None:
        for c in certs:
            if name in c.hostnames:
                return c
        for c in certs:
            if any(_covers(h, name) for h in c.hostnames):
                return c
    return certs[0]


def render(cfg: dp.GatewayConfig, directory: Path, ipv6: bool) -> str:
    """nginx.conf for one Gateway's data plane. `directory` holds nginx's pid, logs, temp
    directories (tmp/body, tmp/proxy, ...) and the certificate files named in cfg.files;
    `ipv6`: every server also listens on [::]."""
    return _Renderer(cfg, directory, ipv6).text()
