"""The subset of kubectl's JSONPath templates `-o jsonpath=` supports, and clear errors for
the rest."""

from __future__ import annotations

import pytest

from netlab.cli.jsonpath import JsonPathError, render

PODS = {"apiVersion": "v1", "kind": "List", "items": [
    {"metadata": {"name": "a", "labels": {"app": "web", "app.kubernetes.io/name": "x"}},
     "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}]}]},
     "status": {"podIP": "10.0.0.1", "ready": True}},
    {"metadata": {"name": "b", "labels": {}},
     "spec": {"containers": [{"name": "c1"}, {"name": "c2"}]},
     "status": {"podIP": "10.0.0.2", "ready": False}},
]}
NODE = {"kind": "Node", "metadata": {"name": "n1"}, "status": {"addresses": [
    {"type": "InternalIP", "address": "172.18.0.2"}, {"type": "Hostname", "address": "n1"}]}}


@pytest.mark.parametrize(("template", "expected"), [
    ("{.items[*].metadata.name}", "a b"),
    ("{.kind}", "List"),
    ("{$.kind}", "List"),
    ("kind={.kind}!", "kind=List!"),
    ("{.items[0].status.podIP}", "10.0.0.1"),
    ("{.items[-1].metadata.name}", "b"),
    ("{.items[0:1].metadata.name}", "a"),
    ("{.items[1:].metadata.name}", "b"),
    ("{.items[:1].metadata.name}", "a"),
    ("{.items[*].spec.containers[*].name}", "c c1 c2"),
    ("{..podIP}", "10.0.0.1 10.0.0.2"),
    ("{.items[0].metadata.labels.app}", "web"),
    ("{.items[0].metadata.labels.app\\.kubernetes\\.io/name}", "x"),
    ("{.items[0].metadata.labels['app.kubernetes.io/name']}", "x"),
    ("{.items[*].status.ready}", "true false"),
    ("{.items[0].spec.containers[0].ports[0].containerPort}", "80"),
    ("{.items[1].metadata.labels}", "{}"),
    ("{.items[0].metadata.labels}", '{"app":"web","app.kubernetes.io/name":"x"}'),
    ("{.items[?(@.status.podIP==\"10.0.0.2\")].metadata.name}", "b"),
    ("{.items[?(@.metadata.name!='a')].metadata.name}", "b"),
    ("{.items[?(@.status.ready)].metadata.name}", "a"),
    ("{.items[?(@.metadata.labels.app)].metadata.name}", "a"),
    ("{.items[*].spec.containers[0].ports[?(@.containerPort>=80)].containerPort}", "80"),
    ("{.items[*].spec.containers[0].ports[?(@.containerPort<80)].containerPort}", ""),
    ("{.missing}", ""),
    ("{.items[7].metadata.name}", ""),
    ('{range .items[*]}{.metadata.name}{"\\t"}{.status.podIP}{"\\n"}{end}',
     "a\t10.0.0.1\nb\t10.0.0.2\n"),
    ("{range .items}{.metadata.name};{end}", "a;b;"),
    ("{range .items[*]}[{range .spec.containers[*]}{.name},{end}]{end}", "[c,][c1,c2,]"),
    ("{range .items[*]}{.metadata.name}/{$.kind} {end}", "a/List b/List "),
    ("{range .items[*]}{@.metadata.name}{end}", "ab"),
    ("{'x'}{\"y\"}", "xy"),
    ("plain text", "plain text"),
])
def test_templates(template: str, expected: str):
    assert render(template, PODS) == expected


def test_kubectl_internal_ip_idiom():
    t = '{.status.addresses[?(@.type=="InternalIP")].address}'
    assert render(t, NODE) == "172.18.0.2"
    assert render("{.status.addresses[?(@.type=='Hostname')].address}", NODE) == "n1"


@pytest.mark.parametrize(("template", "message"), [
    ("{.items[*].metadata.name", "is never closed"),
    ("{.items}}", "'}' without '{'"),
    ("{range .items[*]}{.metadata.name}", "{range} without {end}"),
    ("{.kind}{end}", "{end} without {range}"),
    ("{.items[a]}", "unsupported subscript [a]"),
    ("{.items[?(@.a=~\"x\")]}", "unsupported filter"),
    ("{.items[?(@.a==web)]}", "cannot compare with 'web' (quote strings"),
    ("{.items[?(@.a && @.b)]}", "unsupported filter"),
    ("{.items[0,1]}", "unsupported subscript [0,1]"),
    ("{with .x}{end}", "unsupported action {with...}"),
    ("{len .items}", "unsupported action {len...}"),
    ("{items}", "unsupported action {items...}"),
    ("{.}{.items[}", "is never closed"),
])
def test_unsupported_templates_are_input_errors(template: str, message: str):
    with pytest.raises(JsonPathError) as e:
        render(template, PODS)
    assert message in str(e.value) and e.value.exit_code == 2
    assert "supported:" in str(e.value)
