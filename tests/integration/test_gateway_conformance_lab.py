"""The Gateway API conformance suite's HTTPRoute cases, run against a real lab.

Data: tests/data/gateway/conformance/ (base.yaml describes the format): upstream's manifests
per case and the expectations transcribed from upstream's Go tests. One lab is brought up
with base.yaml; the cases are applied in waves of cases that cannot disturb each other (as
upstream applies one case at a time and deletes it after), each wave deleted before the next.

Two cases may share a wave when they create no object of the same name, when no request of
one could be matched by a route rule of the other on the same Gateway (then merging their
routes changes no answer of either: a rule that does not match a request cannot take part
in its precedence), when neither checks a Gateway's attached-route count that the other's
routes would change, and when neither adds a ReferenceGrant into a namespace the other
references a backend in.

Like upstream (conformance/utils/http), every request is retried until it meets its
expectation three times in a row, within 30 seconds.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from netlab import Lab
from netlab.pytest_plugin import shared_lab

DATA = Path(__file__).resolve().parents[1] / "data" / "gateway" / "conformance"
BASE = DATA / "base.yaml"
EXPECT_KIND = "x-netlab-expect"
GATEWAY_GROUP = "gateway.networking.k8s.io"
# upstream config.DefaultTimeoutConfig: MaxTimeToConsistency, RequiredConsecutiveSuccesses
MAX_TIME_TO_CONSISTENCY = 30.0
REQUIRED_CONSECUTIVE_SUCCESSES = 3
POLL_INTERVAL = 0.1
# upstream http.AddRequestIDQueryParam: marks one request so the mirror's log shows it
REQUEST_ID_PARAM = "gateway-api-conformance-request-id"
# a Host for requests upstream sends to the Gateway's address without a Host of their own
NO_HOST = "gateway.conformance.invalid"


# --- the data -------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Case:
    name: str
    path: Path
    manifests: tuple[dict[str, Any], ...]
    expect: dict[str, Any]

    def requests(self) -> list[dict[str, Any]]:
        return list(self.expect.get("requests") or [])


def load_case(path: Path) -> Case:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    expects = [d for d in docs if d.get("kind") == EXPECT_KIND]
    if len(expects) != 1:
        raise ValueError(f"{path}: {len(expects)} documents of kind {EXPECT_KIND}, want 1")
    manifests = tuple(d for d in docs if d.get("kind") != EXPECT_KIND)
    return Case(expects[0]["case"], path, manifests, expects[0])


def load_cases(directory: Path = DATA) -> list[Case]:
    return [load_case(p) for p in sorted(directory.glob("*.yaml")) if p != directory / BASE.name]


# --- which cases can share the lab ------------------------------------------------------------


def object_keys(case: Case) -> set[tuple[str, str, str]]:
    return {(d["kind"], d["metadata"].get("namespace", "default"), d["metadata"]["name"])
            for d in case.manifests}


def _routes(case: Case) -> list[dict[str, Any]]:
    return [d for d in case.manifests if d.get("kind") == "HTTPRoute"]


def attached_gateways(route: dict[str, Any]) -> set[str]:
    """"ns/name" of the Gateways an HTTPRoute names as parents (any listener)."""
    ns = route["metadata"].get("namespace", "default")
    refs = route["spec"].get("parentRefs") or []
    return {f"{p.get('namespace', ns)}/{p['name']}" for p in refs
            if p.get("kind", "Gateway") == "Gateway"
            and p.get("group", GATEWAY_GROUP) == GATEWAY_GROUP}


def _path_matches(match: dict[str, Any], path: str) -> bool:
    """HTTPPathMatch (PathPrefix matches whole segments; a trailing "/" is ignored)."""
    spec = match.get("path") or {}
    kind, value = spec.get("type", "PathPrefix"), spec.get("value", "/")
    if kind == "Exact":
        return path == value
    if kind == "PathPrefix":
        prefix = value.rstrip("/")
        return not prefix or path == prefix or path.startswith(prefix + "/")
    return True  # RegularExpression: implementation-specific; assume it may match


def _pairs_match(wanted: list[dict[str, Any]], got: dict[str, str]) -> bool:
    for w in wanted:
        value = got.get(w["name"])
        if value is None:
            return False
        if w.get("type", "Exact") == "Exact" and value != w["value"]:
            return False
    return True


def rule_may_match(match: dict[str, Any], request: dict[str, Any]) -> bool:
    """Whether one HTTPRouteMatch could match a request (conservative: True when unsure)."""
    target = urlsplit(request["path"])
    if not _path_matches(match, target.path or "/"):
        return False
    if match.get("method") and match["method"] != request.get("method", "GET"):
        return False
    headers = {k.lower(): v for k, v in (request.get("headers") or {}).items()}
    wanted = [dict(h, name=h["name"].lower()) for h in match.get("headers") or []]
    if not _pairs_match(wanted, headers):
        return False
    query = dict(pair.split("=", 1) if "=" in pair else (pair, "")
                 for pair in target.query.split("&") if pair)
    return _pairs_match(match.get("queryParams") or [], query)


def _route_may_answer(route: dict[str, Any], request: dict[str, Any]) -> bool:
    for rule in route["spec"].get("rules") or [{}]:
        for match in rule.get("matches") or [{}]:
            if rule_may_match(match, request):
                return True
    return False


def _requests_by_gateway(case: Case) -> Iterator[tuple[str, dict[str, Any]]]:
    for r in case.requests():
        yield r.get("gateway", case.expect["gateway"]), r["request"]


def _counted_gateways(case: Case) -> set[str]:
    """Gateways whose attached-route counts the case checks."""
    return {c["object"].split("/", 1)[1] for c in case.expect.get("status") or []
            if c["object"].startswith("Gateway/") and ("attachedRoutes" in c or "zero_routes" in c)}


def _grants(case: Case) -> set[str]:
    return {d["metadata"].get("namespace", "default") for d in case.manifests
            if d.get("kind") == "ReferenceGrant"}


def _backend_namespaces(case: Case) -> set[str]:
    out = set()
    for route in _routes(case):
        ns = route["metadata"].get("namespace", "default")
        for rule in route["spec"].get("rules") or []:
            for ref in rule.get("backendRefs") or []:
                if ref.get("namespace", ns) != ns:
                    out.add(ref["namespace"])
    return out


def _disturbs(a: Case, b: Case) -> bool:
    """Whether a's objects could change what b expects."""
    for route in _routes(a):
        gateways = attached_gateways(route)
        if gateways & _counted_gateways(b):
            return True
        for gw, request in _requests_by_gateway(b):
            if gw in gateways and _route_may_answer(route, request):
                return True
    return bool(_grants(a) & _backend_namespaces(b))


def conflict(a: Case, b: Case) -> bool:
    return bool(object_keys(a) & object_keys(b)) or _disturbs(a, b) or _disturbs(b, a)


def waves(cases: Iterable[Case]) -> list[list[Case]]:
    """Cases grouped first-fit into waves of cases that do not conflict."""
    out: list[list[Case]] = []
    for case in cases:
        for wave in out:
            if not any(conflict(case, other) for other in wave):
                wave.append(case)
                break
        else:
            out.append([case])
    return out


# --- comparing an answer with its expectation ---------------------------------------------------


def _codes(exp: dict[str, Any]) -> list[int]:
    status = exp.get("status", 200)
    return list(status) if isinstance(status, list) else [status]


def _lower(d: dict[str, str] | None) -> dict[str, str]:
    return {k.lower(): v for k, v in (d or {}).items()}


def expected_backend_request(exp: dict[str, Any]) -> dict[str, Any]:
    """upstream CompareRoundTrip: without an ExpectedRequest the backend must see the request
    as sent (its path, Host when given, headers); the method defaults to GET."""
    seen = dict(exp.get("backend_request") or exp["request"])
    seen.setdefault("method", "GET")
    return seen


def _backend_mismatches(exp: dict[str, Any], result: Any) -> list[str]:
    want = expected_backend_request(exp)
    out = []
    seen_path = getattr(result, "seen_path", None)
    if want["path"] != seen_path:
        out.append(f"backend saw path {seen_path!r}, want {want['path']!r}")
    seen_method = getattr(result, "seen_method", None)
    if want["method"] != seen_method:
        out.append(f"backend saw method {seen_method!r}, want {want['method']!r}")
    seen_host = getattr(result, "seen_host", None)
    if want.get("host") and want["host"] != seen_host:
        out.append(f"backend saw Host {seen_host!r}, want {want['host']!r}")
    got = _lower(result.seen_headers)
    for name, value in (want.get("headers") or {}).items():
        if got.get(name.lower()) != value:
            out.append(f"backend saw header {name}: {got.get(name.lower())!r}, want {value!r}")
    for name in want.get("absent_headers") or []:
        if name.lower() in got:
            out.append(f"backend saw header {name}: {got[name.lower()]!r}, want none")
    ns, _, pod = (result.answered_by or "").partition("/")
    if exp.get("namespace") is not None and ns != exp["namespace"]:
        out.append(f"answered from namespace {ns!r}, want {exp['namespace']!r}")
    if not pod.startswith(exp.get("backend") or ""):
        out.append(f"answered by pod {pod!r}, want a pod named {exp['backend']}*")
    return out


def _response_header_mismatches(exp: dict[str, Any], result: Any) -> list[str]:
    got = _lower(result.headers)
    out = [f"response header {name}: {got.get(name.lower())!r}, want {value!r}"
           for name, value in (exp.get("response_headers") or {}).items()
           if got.get(name.lower()) != value]
    out += [f"response header {name}: {got[name.lower()]!r}, want none"
            for name in exp.get("response_absent_headers") or [] if name.lower() in got]
    return out


def _redirect_mismatches(exp: dict[str, Any], result: Any, request_path: str) -> list[str]:
    """upstream CompareRoundTrip for 3xx with a RedirectRequest (setRedirectRequestDefaults)."""
    want = exp.get("redirect")
    if want is None:
        return []
    location = _lower(result.headers).get("location")
    if not location:
        return ["no Location header"]
    u = urlsplit(location)
    scheme, host, port = u.scheme, u.hostname or "", str(u.port or "")
    out = []
    if want.get("host") and want["host"] != host:
        out.append(f"redirect host {host!r}, want {want['host']!r}")
    if want.get("port"):
        if want["port"] != port:
            out.append(f"redirect port {port!r}, want {want['port']!r}")
    elif port not in ("", {"http": "80", "https": "443"}.get(scheme.lower(), port)):
        out.append(f"redirect port {port!r}, want the {scheme} default or none")
    if want.get("scheme", "http") != scheme:
        out.append(f"redirect scheme {scheme!r}, want {want.get('scheme', 'http')!r}")
    want_path = want.get("path") or urlsplit(request_path).path
    if want_path != u.path:
        out.append(f"redirect path {u.path!r}, want {want_path!r}")
    return out


def mismatches(exp: dict[str, Any], result: Any) -> list[str]:
    """What in `result` (a netlab.http_client.HttpResult) differs from the expectation."""
    if result.status not in _codes(exp):
        return [f"status {result.status} ({result.error or result.reason}), want one of "
                f"{_codes(exp)}"]
    if result.status in (200, 204):
        return _backend_mismatches(exp, result) + _response_header_mismatches(exp, result)
    if 300 <= result.status < 400:
        return _redirect_mismatches(exp, result, exp["request"]["path"])
    return []


# --- sending ----------------------------------------------------------------------------------


def with_request_id(exp: dict[str, Any], request_id: str) -> dict[str, Any]:
    """upstream ExpectedResponse.AddRequestIDQueryParam: the id goes on the request's path and
    on the path the backend must see."""
    def add(path: str) -> str:
        return f"{path}{'&' if '?' in path else '?'}{REQUEST_ID_PARAM}={request_id}"

    out = dict(exp, request=dict(exp["request"], path=add(exp["request"]["path"])))
    want = dict(expected_backend_request(exp))
    out["backend_request"] = dict(want, path=add(want["path"]))
    return out


def send(lab: Lab, gateway: str, exp: dict[str, Any]) -> Any:
    rq = exp["request"]
    headers = dict(rq.get("headers") or {})
    host = rq.get("host")
    if host:
        headers["Host"] = host  # as written, port included (HTTPRouteHostnameIntersection)
    echo = exp.get("backend_set_response_headers")
    if echo:  # the echo server answers with these headers (upstream http.MakeRequest)
        headers["X-Echo-Set-Header"] = ",".join(f"{k}:{v}" for k, v in echo.items())
    url_host = host.rsplit(":", 1)[0] if host else NO_HOST  # the data has no IPv6 literals
    url = f"http://{url_host}:{rq.get('port', 80)}{rq['path']}"
    return lab.http(url, method=rq.get("method", "GET"), headers=headers,
                    to=f"gateway/{gateway}")


def eventually(check: Callable[[], list[str]], timeout: float = MAX_TIME_TO_CONSISTENCY,
               required: int = REQUIRED_CONSECUTIVE_SUCCESSES) -> list[str]:
    """upstream http.AwaitConvergence: `required` passes in a row before `timeout`; returns
    the last failure ([] when it converged)."""
    deadline = time.monotonic() + timeout
    passes, last = 0, ["never tried"]
    while time.monotonic() < deadline:
        last = check()
        passes = 0 if last else passes + 1
        if passes >= required:
            return []
        if last:
            time.sleep(POLL_INTERVAL)
    return last


def describe(case: Case, index: int, exp: dict[str, Any]) -> str:
    rq = exp["request"]
    return (f"{case.name} request #{index}: {rq.get('method', 'GET')} "
            f"{rq.get('host', '<gateway address>')}:{rq.get('port', 80)}{rq['path']} "
            f"headers={rq.get('headers') or {}} via gateway "
            f"{exp.get('gateway', case.expect['gateway'])}")


def _outcome(result: Any) -> str:
    body = result.body if len(result.body) < 600 else result.body[:600] + "..."
    return (f"status={result.status} error={result.error} answered_by={result.answered_by} "
            f"seen_path={getattr(result, 'seen_path', None)} "
            f"seen_method={getattr(result, 'seen_method', None)} "
            f"seen_host={getattr(result, 'seen_host', None)} seen_headers={result.seen_headers} "
            f"response_headers={result.headers} body={body!r}")


# --- mirrors and weights ------------------------------------------------------------------------


def _pods(lab: Lab, namespace: str, prefix: str) -> list[str]:
    return [f"{p.namespace}/{p.name}" for p in lab.pods(namespace) if p.name.startswith(prefix)]


def mirror_hits(lab: Lab, namespace: str, backend: str, marker: str) -> int:
    """Log lines of `backend`'s pods that mention `marker` (upstream reads the echo server's
    "Echoing back request made to <path> to client" lines)."""
    return sum(lab.logs(pod).count(marker) for pod in _pods(lab, namespace, backend))


def _check_mirrors(lab: Lab, exp: dict[str, Any], marker: str, what: str) -> None:
    for m in exp.get("mirrored_to") or []:
        deadline = time.monotonic() + MAX_TIME_TO_CONSISTENCY
        while mirror_hits(lab, m["namespace"], m["backend"], marker) == 0:
            assert time.monotonic() < deadline, (
                f"{what}\nexpected: the request mirrored to {m['namespace']}/{m['backend']}*\n"
                f"got: no log line of those pods mentions {marker}")
            time.sleep(0.5)


def _check_mirror_distribution(lab: Lab, gateway: str, exp: dict[str, Any], what: str) -> None:
    """upstream testMirroredRequestsDistribution: `requests` requests, the mirrored count
    within tolerance_stddevs binomial standard deviations of percent, up to `checks` tries."""
    dist = exp["mirror_distribution"]
    n = int(dist["requests"])
    errors: list[str] = []
    for _ in range(int(dist["checks"])):
        marker = uuid.uuid4().hex
        marked = with_request_id(exp, marker)
        for _ in range(n):
            send(lab, gateway, marked)
        time.sleep(1.0)  # the mirror is fire-and-forget: let its requests land
        errors = []
        for m in exp["mirrored_to"]:
            p = m["percent"] / 100.0
            margin = dist["tolerance_stddevs"] * math.sqrt(n * p * (1 - p))
            got = mirror_hits(lab, m["namespace"], m["backend"], marker)
            if not n * p - margin <= got <= n * p + margin:
                errors.append(f"{m['backend']}: {got} of {n} mirrored, want "
                              f"{n * p - margin:.0f}..{n * p + margin:.0f} ({m['percent']}%)")
        if not errors:
            return
    pytest.fail(f"{what}\nexpected: mirror shares {exp['mirrored_to']}\ngot: {errors}")


def backend_of(pod: str, backends: Iterable[str]) -> str | None:
    """The expected backend a pod belongs to: the longest name prefixing it."""
    fits = [b for b in backends if pod.startswith(b)]
    return max(fits, key=len) if fits else None


def weight_errors(counts: Counter[str], expected: dict[str, float], total: int,
                  tolerance: float) -> list[str]:
    """upstream weight.TestWeightedDistribution's verdict."""
    errors = []
    active = sum(1 for w in expected.values() if w > 0)
    if len([b for b in counts if b in expected]) != active:
        errors.append(f"{active} backends should receive traffic, got {dict(counts)}")
    for backend, share in expected.items():
        got = counts.get(backend, 0) / total
        if abs(got - share) > tolerance:
            errors.append(f"{backend}: {got:.3f} of the traffic, want {share} +/- {tolerance}")
    return errors


def _check_weights(lab: Lab, gateway: str, exp: dict[str, Any], what: str) -> None:
    w = exp["weights"]
    expected: dict[str, float] = w["expected"]
    errors: list[str] = []
    for _ in range(int(w["retries"])):
        counts: Counter[str] = Counter()
        for _ in range(int(w["requests"])):
            r = send(lab, gateway, dict(exp, request=dict(
                exp["request"], headers={"X-Jitter": uuid.uuid4().hex})))
            bad = mismatches(exp, r)
            assert not bad, f"{what}\nexpected: {exp}\ngot: {bad}; {_outcome(r)}"
            pod = (r.answered_by or "").partition("/")[2]
            counts[backend_of(pod, expected) or pod] += 1
        errors = weight_errors(counts, expected, int(w["requests"]), float(w["tolerance"]))
        if not errors:
            return
    pytest.fail(f"{what}\nexpected: weights {expected}\ngot: {errors}")


# --- status ------------------------------------------------------------------------------------


def _condition(conditions: list[dict[str, Any]], check: dict[str, Any]) -> str | None:
    """None when a condition of the check's type has its status (and reason, when given)."""
    for c in conditions or []:
        if c.get("type") == check["type"]:
            if c.get("status") != check["status"]:
                return f"{check['type']} is {c.get('status')} ({c.get('reason')})"
            if check.get("reason") and c.get("reason") != check["reason"]:
                return f"{check['type']} has reason {c.get('reason')}"
            return None
    return f"no {check['type']} condition among {[c.get('type') for c in conditions or []]}"


def _parent_entry(status: dict[str, Any], route_ns: str, parent: str) -> dict[str, Any] | None:
    """The route's status entry for a parent "NS/GATEWAY[/LISTENER]": matched on the
    Gateway's name and namespace only, as upstream's parentsForRouteMatch does (the listener
    names the Gateway's listener to check, not the parentRef's sectionName)."""
    ns, name, *_ = parent.split("/")
    for p in status.get("parents") or []:
        ref = p.get("parentRef") or {}
        if ref.get("name") == name and ref.get("namespace", route_ns) == ns:
            return p
    return None


def _listeners(status: dict[str, Any], name: str) -> list[dict[str, Any]]:
    found = status.get("listeners") or []
    return found if name == "*" else [ls for ls in found if ls.get("name") == name]


def _route_check(status: dict[str, Any], check: dict[str, Any], route_ns: str) -> str | None:
    if check.get("no_accepted_parents"):
        parents = status.get("parents") or []
        if len(parents) > 1 or any(_condition(p.get("conditions"), {
                "type": "Accepted", "status": "False"}) for p in parents):
            return f"parents {parents}, want none or one not Accepted"
        return None
    entry = _parent_entry(status, route_ns, check["parent"])
    if entry is None:
        return f"no status.parents entry for {check['parent']}: {status.get('parents')}"
    return _condition(entry.get("conditions"), check)


def _gateway_check(status: dict[str, Any], check: dict[str, Any]) -> str | None:
    if check.get("conditions_present"):
        return None if status.get("conditions") else "no status conditions"
    if check.get("zero_routes"):
        ls = status.get("listeners") or []
        ok = not ls or (len(ls) == 1 and ls[0].get("attachedRoutes") == 0)
        return None if ok else f"listeners {ls}, want none or one with 0 attachedRoutes"
    if "listener" not in check:
        return _condition(status.get("conditions"), check)
    found = _listeners(status, check["listener"])
    if not found:
        return f"no listener {check['listener']} in status"
    for ls in found:
        if "attachedRoutes" in check and ls.get("attachedRoutes") != check["attachedRoutes"]:
            return f"listener {ls.get('name')} attachedRoutes {ls.get('attachedRoutes')}"
        if "supportedKinds" in check and sorted(
                k.get("kind") for k in ls.get("supportedKinds") or []) != \
                sorted(check["supportedKinds"]):
            return f"listener {ls.get('name')} supportedKinds {ls.get('supportedKinds')}"
        if "type" in check and (bad := _condition(ls.get("conditions"), check)):
            return f"listener {ls.get('name')}: {bad}"
    return None


def status_problem(statuses: dict[str, Any], check: dict[str, Any]) -> str | None:
    """None when lab.gateway_api_status() meets one status check of the data."""
    status = statuses.get(check["object"])
    if status is None:
        return f"no status for {check['object']}"
    kind, ns, _ = check["object"].split("/", 2)
    if kind == "HTTPRoute":
        return _route_check(status, check, ns)
    return _gateway_check(status, check)


# --- the lab -----------------------------------------------------------------------------------

CASES = load_cases()
WAVES = waves(CASES)


@pytest.fixture(scope="module")
def conformance_lab(request: pytest.FixtureRequest) -> Lab:
    lab = shared_lab(request, BASE, label="gateway-conformance")
    assert isinstance(lab, Lab)
    assert not lab.settle(timeout=60.0), "the conformance base did not settle"
    return lab


@pytest.fixture(scope="module")
def wave(request: pytest.FixtureRequest, conformance_lab: Lab) -> Iterator[Lab]:
    """The lab with one wave's cases applied; they are deleted when the wave is done."""
    manifests = [m for case in WAVES[request.param] for m in case.manifests]
    conformance_lab.apply(manifests=manifests)
    try:
        conformance_lab.settle(timeout=60.0)
        yield conformance_lab
    finally:
        conformance_lab.delete(manifests=manifests)


def _wave_of(case: Case) -> int:
    return next(i for i, w in enumerate(WAVES) if case in w)


STATUS_PARAMS = [pytest.param(_wave_of(c), c, id=c.name) for c in CASES if c.expect.get("status")]
REQUEST_PARAMS = [pytest.param(_wave_of(c), c, i, id=f"{c.name}-{i}")
                  for c in CASES for i in range(len(c.requests()))]


@pytest.mark.parametrize(("wave", "case"), STATUS_PARAMS, indirect=["wave"])
def test_status(wave: Lab, case: Case) -> None:
    checks = case.expect["status"]

    def problems() -> list[str]:
        statuses = wave.gateway_api_status()
        return [f"{c}: {p}" for c in checks if (p := status_problem(statuses, c))]

    left = eventually(problems, required=1)
    assert not left, f"{case.name} status\nexpected: {checks}\ngot: " + "\n  ".join(left)


@pytest.mark.parametrize(("wave", "case", "index"), REQUEST_PARAMS, indirect=["wave"])
def test_request(wave: Lab, case: Case, index: int) -> None:
    exp = case.requests()[index]
    gateway = exp.get("gateway", case.expect["gateway"])
    what = describe(case, index, exp)
    if "weights" in exp:
        _check_weights(wave, gateway, exp, what)
        return
    marker = uuid.uuid4().hex if exp.get("mirrored_to") else None
    sent = with_request_id(exp, marker) if marker else exp
    last: list[Any] = []

    def attempt() -> list[str]:
        last[:] = [send(wave, gateway, sent)]
        return mismatches(sent, last[0])

    left = eventually(attempt)
    assert not left, (f"{what}\nexpected: {json.dumps(sent, sort_keys=True)}\ngot: {left}\n"
                      f"answer: {_outcome(last[0]) if last else 'none'}")
    if marker and "mirror_distribution" not in exp:  # upstream checks only the share there
        _check_mirrors(wave, sent, marker, what)
    if "mirror_distribution" in exp:
        _check_mirror_distribution(wave, gateway, exp, what)

