"""IngressClass: loading and validation (the API server's rules), which Ingresses the lab's
ingress-nginx serves (ingressClassName, the legacy annotation, the default class, and labs
without any IngressClass), and `get ingressclasses` (no root, no kernel)."""

from __future__ import annotations

import json
import textwrap
from itertools import product

import pytest
from typer.testing import CliRunner

from netlab.cli import app
from netlab.cli import get as cli_get
from netlab.compile import compile_lab
from netlab.errors import InputError
from netlab.features import ingress
from netlab.loader import as_docs, build, read_text
from netlab.model import Cluster, Ingress
from netlab.views import IngressClassInfo, ingress_class_infos, ingress_infos

OURS, OTHER = "k8s.io/ingress-nginx", "example.com/other"


def ingress_class(name: str, controller: str = OURS, default: bool = False,
                  extra: str = "") -> str:
    ann = ("\n  annotations: {ingressclass.kubernetes.io/is-default-class: \"true\"}"
           if default else "")
    return (f"apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata:\n"
            f"  name: {name}{ann}\nspec:\n  controller: {controller}\n{extra}")


def an_ingress(name: str, class_name: str | None = None, legacy: str | None = None,
               host: str | None = None) -> str:
    spec = f"  ingressClassName: {class_name}\n" if class_name else ""
    ann = f"  annotations: {{kubernetes.io/ingress.class: {legacy}}}\n" if legacy else ""
    return (f"apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: {name}\n"
            f"{ann}spec:\n{spec}  rules:\n  - host: {host or name + '.example'}\n"
            "    http:\n      paths: [{path: /, pathType: Prefix, backend: {service: "
            "{name: web, port: {number: 80}}}}]\n")


def load(*texts: str):
    return build(read_text("---\n".join(texts), "test.yaml"))


def error_of(*texts: str) -> str:
    with pytest.raises(InputError) as e:
        load(*texts)
    return " ".join(str(e.value).split())


# --- loading -------------------------------------------------------------------------------


def test_ingress_class_loads_with_controller_default_and_parameters():
    m = load(ingress_class("public", default=True, extra=textwrap.indent(textwrap.dedent("""\
        parameters:
          apiGroup: k8s.example.com
          kind: IngressParameters
          name: external-lb
        """), "  ")))
    c = m.ingress_classes["public"]
    assert (c.name, c.controller, c.is_default) == ("public", OURS, True)
    assert c.parameters is not None
    assert (c.parameters.kind, c.parameters.name, c.parameters.api_group,
            c.parameters.scope) == ("IngressParameters", "external-lb", "k8s.example.com",
                                    "Cluster")  # the API's default scope
    assert ("IngressClass", "", "public") in m.raw  # cluster-scoped: no namespace
    assert any("spec.parameters (IngressParameters external-lb) is not modelled" in w
               for w in m.warnings)
    assert not any("not modelled by netlab; document skipped" in w for w in m.warnings)


def test_is_default_needs_exactly_the_string_true():
    m = load(ingress_class("a").replace("metadata:\n", "metadata:\n  annotations: "
                                        "{ingressclass.kubernetes.io/is-default-class: "
                                        "\"True\"}\n"))
    assert m.ingress_classes["a"].is_default is False


def test_namespaced_parameters_keep_their_namespace():
    m = load(ingress_class("a", extra="  parameters: {kind: Cfg, name: x, scope: Namespace, "
                                      "namespace: team-a}\n"))
    p = m.ingress_classes["a"].parameters
    assert p is not None and (p.scope, p.namespace) == ("Namespace", "team-a")


@pytest.mark.parametrize(("text", "message"), [
    (ingress_class("a", controller="nginx"),
     "IngressClass a: spec.controller: Invalid value: 'nginx': must be a domain-prefixed path"),
    (ingress_class("a").replace("spec:\n  controller: k8s.io/ingress-nginx\n", ""),
     "spec.controller: Invalid value: '': must be a domain-prefixed path"),
    (ingress_class("a", controller="Example.COM/x"),
     "spec.controller: Invalid value: 'Example.COM': a lowercase RFC 1123 subdomain"),
    (ingress_class("a", controller="example.com/" + "x" * 250),
     "spec.controller: Too long: may not be more than 250 bytes"),
    (ingress_class("a", extra="  parameters: {name: x}\n"),
     "spec.parameters.kind: is required"),
    (ingress_class("a", extra="  parameters: {kind: Cfg, name: a/b}\n"),
     "spec.parameters.name: Invalid value: 'a/b'"),
    (ingress_class("a", extra="  parameters: {kind: Cfg, name: x, scope: Namespace}\n"),
     "spec.parameters.namespace: Required value: `parameters.scope` is set to 'Namespace'"),
    (ingress_class("a", extra="  parameters: {kind: Cfg, name: x, namespace: y}\n"),
     "spec.parameters.namespace: Forbidden: `parameters.scope` is set to 'Cluster'"),
    (ingress_class("a", extra="  parameters: {kind: Cfg, name: x, scope: Global}\n"),
     "spec.parameters.scope: 'Global' is not one of Cluster, Namespace"),
    (ingress_class("a").replace("apiVersion: networking.k8s.io/v1",
                                "apiVersion: networking.k8s.io/v1beta1"),
     "'networking.k8s.io/v1beta1' is not supported for IngressClass"),
    (an_ingress("x", class_name="nginx", legacy="nginx"),
     "Ingress default/x: metadata.annotations.kubernetes.io/ingress.class: Invalid value: "
     "'nginx': can not be set when the class field is also set"),
])
def test_invalid_objects_are_refused(text: str, message: str):
    assert message in error_of(text)


def test_duplicate_ingress_class_is_refused():
    assert "duplicate object" in error_of(ingress_class("a"), ingress_class("a", OTHER))


def test_invalid_ingress_class_is_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(ingress_class("a", controller="nginx"))
    r = CliRunner().invoke(app, ["up", "--dry-run", "-f", str(bad)])
    assert r.exit_code == 2, r.output
    assert "must be a domain-prefixed path" in " ".join(r.output.split())


# --- which Ingresses are served: the truth table ---------------------------------------------
# An Ingress names a class the lab serves, one of another controller, or an unknown one, or
# has no class and the legacy annotation (ours / another), or neither; the lab declares a
# served IngressClass or one of another controller, marked default or not, or no IngressClass.

CLUSTER = Cluster()  # ingressClass: nginx


def case(ing_class: str | None, legacy: str | None, classes: str) -> bool:
    """Served? classes: 'none' (no IngressClass object), or 'ours'/'other' [+ '-default']."""
    texts = [an_ingress("x", ing_class, legacy)]
    if classes != "none":
        controller = OURS if classes.startswith("ours") else OTHER
        texts.append(ingress_class("c", controller, default=classes.endswith("-default")))
    m = load(*texts)
    served = ingress.served(m, CLUSTER)
    why = ingress.why_not_served(m.ingresses["default/x"], m, CLUSTER)
    assert (why is None) == bool(served)
    return bool(served)


CLASSES = ("none", "ours", "ours-default", "other", "other-default")


@pytest.mark.parametrize(("ing_class", "legacy", "classes"), [
    (c, None, k) for c, k in product(("c", "nginx", "elsewhere"), CLASSES)] + [
    (None, a, k) for a, k in product(("c", "nginx", "traefik"), CLASSES)] + [
    (None, None, k) for k in CLASSES])
def test_served_truth_table(ing_class: str | None, legacy: str | None, classes: str):
    ours = {"nginx"} | ({"c"} if classes.startswith("ours") else set())
    if ing_class is not None:
        expected = ing_class in ours
    elif legacy is not None:
        expected = legacy in ours  # ingress-nginx: the annotation must name its class
    elif classes == "none":
        expected = True  # netlab's compatibility: no IngressClass at all -> served
    else:
        expected = classes == "ours-default"  # the default class is given at admission
    assert case(ing_class, legacy, classes) is expected


def test_an_ingress_class_named_like_the_clusters_class_decides_by_its_controller():
    m = load(an_ingress("x", "nginx"), ingress_class("nginx", OTHER))
    assert ingress.served_classes(m, CLUSTER) == []
    assert "IngressClass nginx is for controller example.com/other" in (
        ingress.why_not_served(m.ingresses["default/x"], m, CLUSTER) or "")


def test_a_lab_with_another_clusters_class_serves_that_name():
    m = load(an_ingress("x", "public"), an_ingress("y", "nginx"))
    served = ingress.served(m, Cluster(ingress_class="public"))
    assert [i.name for i in served] == ["x"]


def reason(m, name: str) -> str:
    return ingress.why_not_served(m.ingresses[f"default/{name}"], m, CLUSTER) or ""


def test_reasons_name_the_class_and_the_controller():
    m = load(ingress_class("public"), ingress_class("other", OTHER),
             an_ingress("a", "other"), an_ingress("b", "nope"),
             an_ingress("c", legacy="traefik"), an_ingress("d"))
    assert reason(m, "a") == ("ingressClassName 'other': IngressClass other is for controller "
                              "example.com/other, not this lab's ingress-nginx "
                              "(k8s.io/ingress-nginx): not served")
    assert reason(m, "b") == ("ingressClassName 'nope': no IngressClass of that name, and it "
                              "is not a class this lab serves ('nginx', 'public'): not served")
    assert reason(m, "c").startswith("annotation kubernetes.io/ingress.class: 'traefik' is not "
                                     "a class this lab serves ('nginx', 'public')")
    assert "no IngressClass marked default" in reason(m, "d")


def test_two_default_classes_warn_and_an_ingress_without_class_is_not_served():
    m = load(ingress_class("a", default=True), ingress_class("b", default=True),
             an_ingress("x"), an_ingress("y", "a"))
    assert ingress.class_warnings(m) == [
        "IngressClasses a, b are all marked default (ingressclass.kubernetes.io/"
        "is-default-class): Kubernetes refuses new Ingresses without ingressClassName while "
        "more than one is"]
    assert "several IngressClasses are marked default (a, b)" in reason(m, "x")
    assert [i.name for i in ingress.served(m, CLUSTER)] == ["y"]


def test_default_class_of_another_controller():
    m = load(ingress_class("other", OTHER, default=True), an_ingress("x"))
    assert "gets the default IngressClass other, which is for controller " \
           "example.com/other" in reason(m, "x")
    assert ingress.assigned_class(m.ingresses["default/x"], m) == "other"


def test_assigned_class_is_the_single_default_unless_the_legacy_annotation_is_set():
    m = load(ingress_class("public", default=True), an_ingress("x"),
             an_ingress("y", legacy="nginx"), an_ingress("z", "nginx"))
    got = {k: ingress.assigned_class(i, m) for k, i in m.ingresses.items()}
    assert got == {"default/x": "public", "default/y": None, "default/z": "nginx"}


# --- what the lab builds: nginx.conf, warnings, problems, the controller add-on --------------

BACKEND = """
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec: {containers: [{name: c, ports: [{containerPort: 80}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{port: 80}]}
"""


def compiled(*texts: str):
    return compile_lab("t", as_docs([BACKEND, *texts]))


def test_only_served_ingresses_reach_nginx_and_the_others_are_warned():
    d = compiled(ingress_class("public"), ingress_class("other", OTHER),
                 an_ingress("pub", "public"), an_ingress("oth", "other"),
                 an_ingress("leg", legacy="traefik"))
    conf = d.files["ingress/nginx.conf"].data.decode()
    assert "server_name pub.example;" in conf
    assert "oth.example" not in conf and "leg.example" not in conf
    assert any(w.startswith("Ingress default/oth: ingressClassName 'other'")
               for w in d.warnings)
    assert any(w.startswith("Ingress default/leg: annotation kubernetes.io/ingress.class")
               for w in d.warnings)
    infos = {i.name: i for i in ingress_infos(d.plan, d.manifests)}
    assert infos["pub"].address and not infos["pub"].problems
    assert infos["oth"].address is None and "not served" in infos["oth"].problems[0]
    assert infos["leg"].address is None and "traefik" in infos["leg"].problems[0]


def test_no_controller_when_nothing_is_served_but_the_reasons_are_warned():
    d = compiled(ingress_class("other", OTHER), an_ingress("oth", "other"))
    assert f"{ingress.NAMESPACE}/{ingress.CONTROLLER}" not in d.plan.pods
    assert any(w.startswith("Ingress default/oth: ingressClassName 'other'")
               for w in d.warnings)


def test_the_default_class_serves_ingresses_without_class_and_shows_as_their_class():
    d = compiled(ingress_class("public", default=True), an_ingress("x"))
    assert "server_name x.example;" in d.files["ingress/nginx.conf"].data.decode()
    [info] = ingress_infos(d.plan, d.manifests)
    assert info.class_name == "public" and info.address


def test_labs_without_ingress_class_objects_work_as_before():
    d = compiled(an_ingress("x"), an_ingress("y", "nginx"), an_ingress("z", "traefik"))
    conf = d.files["ingress/nginx.conf"].data.decode()
    assert "server_name x.example;" in conf and "server_name y.example;" in conf
    assert "z.example" not in conf
    [z] = [i for i in ingress_infos(d.plan, d.manifests) if i.name == "z"]
    assert z.problems == ["Ingress default/z: ingressClassName 'traefik': no IngressClass of "
                          "that name, and it is not a class this lab serves ('nginx'): not "
                          "served"]


# --- get ingressclasses ----------------------------------------------------------------------


def test_ingress_class_infos_are_shaped_like_the_api():
    d = compiled(ingress_class("public", default=True, extra="  parameters: {apiGroup: "
                                                             "k8s.example.com, kind: P, "
                                                             "name: x}\n"),
                 ingress_class("other", OTHER), an_ingress("x"))
    infos = ingress_class_infos(d.plan, d.manifests)
    assert [(i.name, i.served, i.is_default, i.parameters_text) for i in infos] == [
        ("other", False, False, "<none>"), ("public", True, True, "P.k8s.example.com/x")]
    assert infos[1].to_k8s() == {
        "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
        "metadata": {"name": "public", "annotations": {
            "ingressclass.kubernetes.io/is-default-class": "true"}},
        "spec": {"controller": OURS, "parameters": {
            "apiGroup": "k8s.example.com", "kind": "P", "name": "x", "scope": "Cluster"}},
        "netlab": {"served": True}}


class FakeLab:
    name = "fake"

    def ingress_classes(self) -> list[IngressClassInfo]:
        return [IngressClassInfo("other", OTHER, None, False, False, {}, {}),
                IngressClassInfo("public", OURS, {"kind": "P", "name": "x"}, True, True, {},
                                 {"ingressclass.kubernetes.io/is-default-class": "true"})]


@pytest.fixture
def get(monkeypatch):
    monkeypatch.setattr(cli_get, "open_lab", lambda lab: FakeLab())

    def _get(*args: str) -> tuple[int, str, str]:
        r = CliRunner().invoke(app, ["get", *args])
        return r.exit_code, r.stdout, r.stderr

    return _get


@pytest.mark.parametrize("kind", ["ingressclasses", "ingressclass", "IngressClass"])
def test_get_ingressclasses_table(get, kind: str):
    code, out, err = get(kind)
    assert code == 0, err
    lines = [line.split() for line in out.splitlines()]
    assert lines == [["NAME", "CONTROLLER", "PARAMETERS"],
                     ["other", OTHER, "<none>"],
                     ["public", "(default)", OURS, "P/x"]]


def test_get_ingressclass_json_and_name(get):
    code, out, _ = get("ingressclass", "public", "-o", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["kind"] == "IngressClass" and doc["spec"]["controller"] == OURS
    code, out, _ = get("ingressclasses", "-o", "name")
    assert out.split() == ["ingressclass.networking.k8s.io/other",
                           "ingressclass.networking.k8s.io/public"]
    code, out, _ = get("ingressclasses", "-o", "wide")
    assert out.splitlines()[0].split() == ["NAME", "CONTROLLER", "PARAMETERS", "SERVED"]


def test_ingress_dataclass_default_has_no_class():
    assert Ingress("default", "x", None).class_name is None
