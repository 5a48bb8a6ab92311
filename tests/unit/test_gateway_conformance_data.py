"""The Gateway API conformance data (tests/data/gateway/conformance) is well formed: every
file parses, every Gateway API manifest is valid as the CRDs say, the expectations follow
the format base.yaml describes, and the lab test can place every case in a wave."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from netlab import loader
from netlab.gateway import api

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "gateway" / "conformance"
BASE = DATA / "base.yaml"
FILES = sorted(p for p in DATA.glob("*.yaml") if p != BASE)
NAMESPACES = {"gateway-conformance-infra", "gateway-conformance-app-backend",
              "gateway-conformance-web-backend"}
BACKENDS = {"infra-backend-v1", "infra-backend-v2", "infra-backend-v3", "app-backend-v1",
            "app-backend-v2", "web-backend"}
REQUEST_KEYS = {"request", "gateway", "status", "backend", "namespace", "backend_request",
                "backend_set_response_headers", "response_headers", "response_absent_headers",
                "redirect", "mirrored_to", "mirror_distribution", "weights"}
STATUS_FORMS = ({"type", "status"}, {"attachedRoutes"}, {"supportedKinds"},
                {"conditions_present"}, {"no_accepted_parents"}, {"zero_routes"})
CONDITION_STATUS = {"True", "False", "Unknown"}
EXPECT_KIND = "x-netlab-expect"


def _lab_test() -> ModuleType:
    """The integration module holds the data's reader and the wave planner (pure code)."""
    path = ROOT / "integration" / "test_gateway_conformance_lab.py"
    spec = importlib.util.spec_from_file_location("gateway_conformance_lab", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


LAB = _lab_test()


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def test_there_are_cases() -> None:
    assert len(FILES) >= 25
    names = {LAB.load_case(p).name for p in FILES}
    assert names == {p.stem for p in FILES}  # one file per case, named after it


def test_base_manifests() -> None:
    docs = loader.read_files([BASE])
    kinds = {(d.kind, d.doc["metadata"]["name"]) for d in docs}
    for gw in ("same-namespace", "all-namespaces", "backend-namespaces"):
        assert ("Gateway", gw) in kinds
    for name in BACKENDS:
        assert ("Deployment", name) in kinds and ("Service", name) in kinds
    labels = {d.doc["metadata"]["name"]: d.doc["metadata"].get("labels", {})
              for d in docs if d.kind == "Namespace"}
    assert labels == {"gateway-conformance-infra": {"gateway-conformance": "infra"},
                      "gateway-conformance-app-backend": {"gateway-conformance": "backend"},
                      "gateway-conformance-web-backend": {"gateway-conformance": "backend"}}
    for d in docs:  # the echo server's port, which netlab's responder answers on
        if d.kind == "Deployment":
            ports = [p["containerPort"] for c in d.doc["spec"]["template"]["spec"]["containers"]
                     for p in c.get("ports", [])]
            assert ports == [3000], d.doc["metadata"]["name"]
        if d.kind == "Gateway":
            assert d.doc["spec"]["gatewayClassName"] == "netlab"


@pytest.mark.parametrize("path", [BASE, *FILES], ids=lambda p: p.stem)
def test_manifests_parse(path: Path) -> None:
    """Every document reads with netlab's reader, and every Gateway API object is valid
    (netlab.gateway.api validates as the CRDs do)."""
    docs = loader.read_text(path.read_text(), str(path))
    assert docs
    for d in docs:
        if d.kind in api.KINDS:
            warnings: list[str] = []
            api.parse(d.doc, d.file, d.line, warnings)
            assert d.doc.get("kind") != "Gateway" or d.doc["spec"]["gatewayClassName"] == "netlab"
    assert "{GATEWAY_CLASS_NAME}" not in path.read_text().split("\n---\n", 1)[-1]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_builds_with_base(path: Path) -> None:
    """base.yaml plus the case is a scenario netlab builds, Gateway API kinds included."""
    assert not [k for k in api.KINDS if k not in loader.API_VERSIONS]
    m = loader.build(loader.read_files([BASE, path]))
    skipped = [w for w in m.warnings if "kind '" in w and "is not modelled" in w
               and EXPECT_KIND not in w]
    assert not skipped  # every manifest is read (unmodelled fields may still be warned about)
    assert {"gateway-conformance-infra", "gateway-conformance-web-backend"} <= {
        ns for _, ns, _ in m.raw}


def _check_status(case: str, check: dict[str, Any]) -> None:
    assert set(check) - {"object", "parent", "listener", "type", "status", "reason",
                         "attachedRoutes", "supportedKinds", "conditions_present",
                         "no_accepted_parents", "zero_routes"} == set(), (case, check)
    kind, ns, name = check["object"].split("/", 2)
    assert kind in ("Gateway", "HTTPRoute", "GatewayClass") and ns and name, (case, check)
    assert any(form <= set(check) for form in STATUS_FORMS), (case, check)
    if "status" in check:
        assert check["status"] in CONDITION_STATUS, (case, check)
    if kind == "HTTPRoute" and "type" in check:
        assert len(check["parent"].split("/")) in (2, 3), (case, check)
    if {"attachedRoutes", "supportedKinds"} & set(check):
        assert kind == "Gateway" and check.get("listener"), (case, check)


def _check_request(case: str, gateway: str, r: dict[str, Any]) -> None:
    assert set(r) <= REQUEST_KEYS, (case, set(r) - REQUEST_KEYS)
    rq = r["request"]
    assert set(rq) <= {"path", "host", "method", "headers", "port"}, (case, rq)
    assert rq["path"].startswith("/"), (case, rq)
    assert len(r.get("gateway", gateway).split("/")) == 2, (case, r)
    codes = r.get("status", 200)
    assert all(100 <= c < 600 for c in (codes if isinstance(codes, list) else [codes])), r
    if r.get("backend"):
        assert r["backend"] in BACKENDS and r["namespace"] in NAMESPACES, (case, r)
    if "backend_request" in r:
        assert "path" in r["backend_request"], (case, r)
        assert set(r["backend_request"]) <= {"path", "host", "method", "headers",
                                             "absent_headers"}, (case, r)
    if "redirect" in r:
        assert set(r["redirect"]) <= {"scheme", "host", "port", "path"}, (case, r)
        assert 300 <= r["status"] < 400, (case, r)
    for m in r.get("mirrored_to") or []:
        assert m["backend"] in BACKENDS and m["namespace"] in NAMESPACES, (case, m)
        assert 0 <= m.get("percent", 100) <= 100, (case, m)
    if "mirror_distribution" in r:
        assert all("percent" in m for m in r["mirrored_to"]), (case, r)
    if "weights" in r:
        w = r["weights"]
        assert set(w["expected"]) <= BACKENDS and abs(sum(w["expected"].values()) - 1) < 1e-9
        assert w["requests"] > 0 and 0 < w["tolerance"] < 1 and w["retries"] > 0


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_expectations_schema(path: Path) -> None:
    expects = [d for d in _docs(path) if d.get("kind") == "x-netlab-expect"]
    assert len(expects) == 1 and _docs(path)[-1] is not None
    e = expects[0]
    assert e["case"] == path.stem
    assert e["upstream"]["test"].startswith("conformance/tests/") and len(
        e["upstream"]["commit"]) == 40
    assert {"Gateway"} <= set(e["features"])
    assert len(e["gateway"].split("/")) == 2
    assert e.get("status") or e.get("requests"), "a case checks something"
    for check in e.get("status") or []:
        _check_status(e["case"], check)
    for r in e.get("requests") or []:
        _check_request(e["case"], e["gateway"], r)


def test_requests_and_routes_name_existing_gateways() -> None:
    """Requests go to Gateways of the base or of their own case."""
    base = {f"{d['metadata']['namespace']}/{d['metadata']['name']}" for d in _docs(BASE)
            if d.get("kind") == "Gateway"}
    for case in LAB.load_cases(DATA):
        own = {f"{d['metadata'].get('namespace', 'default')}/{d['metadata']['name']}"
               for d in case.manifests if d.get("kind") == "Gateway"}
        targets = {r.get("gateway", case.expect["gateway"]) for r in case.requests()}
        assert targets <= base | own, (case.name, targets - base - own)


def test_waves_cover_every_case_without_conflicts() -> None:
    cases = LAB.load_cases(DATA)
    waves = LAB.waves(cases)
    assert sorted(c.name for w in waves for c in w) == sorted(c.name for c in cases)
    for w in waves:
        for i, a in enumerate(w):
            for b in w[i + 1:]:
                assert not LAB.conflict(a, b), (a.name, b.name)
    assert len(waves) < len(cases)  # the point of waves: fewer lab changes than cases


def _case(manifests: list[dict[str, Any]], requests: list[dict[str, Any]],
          status: list[dict[str, Any]] | None = None) -> Any:
    expect = {"case": "X", "gateway": "infra/gw", "requests": requests, "status": status or []}
    return LAB.Case("X", Path("x.yaml"), tuple(manifests), expect)


def _route(name: str, matches: list[dict[str, Any]], gateway: str = "gw") -> dict[str, Any]:
    return {"kind": "HTTPRoute", "metadata": {"name": name, "namespace": "infra"},
            "spec": {"parentRefs": [{"name": gateway}], "rules": [{"matches": matches}]}}


def test_conflicts() -> None:
    exact = _case([_route("a", [{"path": {"type": "Exact", "value": "/one"}}])],
                  [{"request": {"path": "/"}, "status": 404}])
    header = _case([_route("b", [{"headers": [{"name": "Version", "value": "one"}]}])],
                   [{"request": {"path": "/", "headers": {"version": "one"}}}])
    catch_all = _case([_route("c", [{}])], [{"request": {"path": "/x"}}])
    other_gw = _case([_route("d", [{}], gateway="other")], [{"request": {"path": "/"},
                                                              "gateway": "infra/other"}])
    assert not LAB.conflict(exact, header)  # "/" without the header reaches neither
    assert LAB.conflict(exact, catch_all)  # the catch-all would answer exact's 404
    assert LAB.conflict(header, catch_all)
    assert not LAB.conflict(catch_all, other_gw)
    same_name = _case([_route("a", [{"path": {"type": "Exact", "value": "/z"}}])], [])
    assert LAB.conflict(exact, same_name)
    counted = _case([], [], [{"object": "Gateway/infra/gw", "zero_routes": True}])
    assert LAB.conflict(counted, exact)


def test_rule_matching() -> None:
    prefix = {"path": {"type": "PathPrefix", "value": "/v2"}}
    assert LAB.rule_may_match(prefix, {"path": "/v2"})
    assert LAB.rule_may_match(prefix, {"path": "/v2/example?x=1"})
    assert not LAB.rule_may_match(prefix, {"path": "/v2example"})
    query = {"queryParams": [{"name": "animal", "value": "whale"}]}
    assert LAB.rule_may_match(query, {"path": "/?animal=whale&x=y"})
    assert not LAB.rule_may_match(query, {"path": "/?ANIMAL=whale"})
    method = {"method": "POST"}
    assert not LAB.rule_may_match(method, {"path": "/"})
    assert LAB.rule_may_match(method, {"path": "/", "method": "POST"})


def test_compare_semantics() -> None:
    """The comparison follows upstream's CompareRoundTrip on made-up answers."""
    class Answer:
        def __init__(self, **kw: Any) -> None:
            self.status, self.error, self.reason, self.body = 200, None, "", ""
            self.headers: dict[str, str] = {}
            self.seen_headers: dict[str, str] = {}
            self.answered_by = "gateway-conformance-infra/infra-backend-v1-7d4-abcde"
            self.seen_path, self.seen_method, self.seen_host = "/one", "GET", "x"
            self.__dict__.update(kw)

    exp = {"request": {"path": "/one"}, "backend": "infra-backend-v1",
           "namespace": "gateway-conformance-infra"}
    assert LAB.mismatches(exp, Answer()) == []
    assert LAB.mismatches(exp, Answer(status=404))
    assert LAB.mismatches(exp, Answer(answered_by="gateway-conformance-infra/infra-backend-v2-1"))
    assert LAB.mismatches(exp, Answer(seen_path="/two"))
    hdr = dict(exp, backend_request={"path": "/one", "headers": {"X-A": "1"},
                                     "absent_headers": ["X-B"]})
    assert LAB.mismatches(hdr, Answer(seen_headers={"x-a": "1"})) == []
    assert LAB.mismatches(hdr, Answer(seen_headers={"x-a": "1", "x-b": "2"}))
    redirect = {"request": {"path": "/port?q=1"}, "status": 302, "redirect": {"port": "8083"}}
    good = Answer(status=302, headers={"Location": "http://example.org:8083/port"})
    assert LAB.mismatches(redirect, good) == []
    assert LAB.mismatches(redirect, Answer(status=302, headers={"Location": "http://h/port"}))
    scheme = {"request": {"path": "/s"}, "status": 302, "redirect": {"scheme": "https"}}
    assert LAB.mismatches(scheme, Answer(status=302, headers={"location": "https://h/s"})) == []
    assert LAB.mismatches(scheme, Answer(status=302, headers={"location": "https://h:80/s"}))


def test_status_checks() -> None:
    statuses = {
        "HTTPRoute/ns/r": {"parents": [{"parentRef": {"name": "gw"}, "conditions": [
            {"type": "Accepted", "status": "True", "reason": "Accepted"}]}]},
        "Gateway/ns/gw": {"conditions": [{"type": "Accepted", "status": "True"}],
                          "listeners": [{"name": "http", "attachedRoutes": 1,
                                         "supportedKinds": [{"kind": "HTTPRoute"}],
                                         "conditions": []}]},
    }
    ok = {"object": "HTTPRoute/ns/r", "parent": "ns/gw", "type": "Accepted", "status": "True",
          "reason": "Accepted"}
    assert LAB.status_problem(statuses, ok) is None
    assert LAB.status_problem(statuses, dict(ok, status="False"))
    assert LAB.status_problem(statuses, dict(ok, parent="ns/other"))
    assert LAB.status_problem(statuses, {"object": "HTTPRoute/ns/r", "no_accepted_parents": True})
    listener = {"object": "Gateway/ns/gw", "listener": "http", "attachedRoutes": 1}
    assert LAB.status_problem(statuses, listener) is None
    assert LAB.status_problem(statuses, dict(listener, attachedRoutes=2))
    assert LAB.status_problem(statuses, {"object": "Gateway/ns/gw", "zero_routes": True})
    assert LAB.status_problem(statuses, {"object": "Gateway/ns/missing",
                                         "conditions_present": True})


def test_weights_verdict() -> None:
    want = {"infra-backend-v1": 0.7, "infra-backend-v2": 0.3, "infra-backend-v3": 0.0}
    from collections import Counter
    assert LAB.weight_errors(Counter({"infra-backend-v1": 350, "infra-backend-v2": 150}),
                             want, 500, 0.05) == []
    assert LAB.weight_errors(Counter({"infra-backend-v1": 250, "infra-backend-v2": 250}),
                             want, 500, 0.05)
    assert LAB.weight_errors(Counter({"infra-backend-v1": 340, "infra-backend-v2": 150,
                                      "infra-backend-v3": 10}), want, 500, 0.05)
    assert LAB.backend_of("infra-backend-v1-abc-12345", want) == "infra-backend-v1"
