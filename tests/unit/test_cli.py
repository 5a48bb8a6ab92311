"""The CLI without root: help everywhere, bad input is exit 2 with one clear line, --dry-run
shows the kernel objects a lab would be made of, and `get` behaves like kubectl get (against
a fake lab)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from typer.testing import CliRunner

from netlab import lab as api
from netlab.cli import app
from netlab.cli import get as cli_get
from netlab.views import (
    ContainerStatus,
    IngressInfo,
    LabStatus,
    NamespaceInfo,
    NodeInfo,
    PodInfo,
    ServiceInfo,
)

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.mark.parametrize("command", ["", "up", "apply", "delete", "down", "status", "get",
                                     "exec", "ping", "logs"])
def test_help(command: str):
    r = runner.invoke(app, [*command.split(), "--help"])
    assert r.exit_code == 0, r.output
    assert "Usage" in r.output


def test_bad_input_is_exit_2_before_anything_happens(write):
    bad = write("bad.yaml", """
        apiVersion: v1
        kind: Pod
        metadata: {name: a}
        spec:
          containers: [{name: c, ports: [{containerPort: 99999}]}]
        """)
    r = runner.invoke(app, ["up", "-f", str(bad)])
    assert r.exit_code == 2
    assert f"{bad}:1: Pod default/a: spec.containers[0].ports[0].containerPort: 99999 is out " \
           "of range 1-65535" in " ".join(r.output.split())


def test_missing_file_is_exit_2(tmp_path: Path):
    r = runner.invoke(app, ["up", "-f", str(tmp_path / "nope.yaml")])
    assert r.exit_code == 2 and "no such file" in r.output


def test_dry_run_renders_intents():
    r = runner.invoke(app, ["up", "--dry-run", "-f", str(ROOT / "scenarios" / "quickstart.yaml")])
    assert r.exit_code == 0, r.output
    assert "[node.node-1] link add flannel.1 index 102 type vxlan id 1" in r.output
    assert "[pod.default.pod-a] addr add 10.244.0.2/24 dev eth0" in r.output


def test_plan_errors_are_exit_2_before_root(write):
    bad = write("pinned.yaml", """
        apiVersion: v1
        kind: Pod
        metadata: {name: a}
        spec:
          nodeName: node-9
          containers: [{name: c}]
        """)
    r = runner.invoke(app, ["up", "-f", str(bad)])
    assert r.exit_code == 2
    assert "Pod default/a: spec.nodeName: node 'node-9' does not exist (nodes: node-1, " \
           "node-2)" in " ".join(r.output.split())


# --- get, like kubectl, against a fake lab --------------------------------------------------

def _pod(ns: str, name: str, ip: str, node: str, **labels: str) -> PodInfo:
    running = ContainerStatus("c", ("sleep",), "running", ready=True)
    return PodInfo(ns, name, node, ip, labels, (running,), "172.18.0.2")


def _port(*endpoints: SimpleNamespace) -> SimpleNamespace:
    return SimpleNamespace(name="http", port=80, protocol="TCP", target=80, node_port=None,
                           endpoints=endpoints, not_ready=())


class FakeLab:
    """What `get` reads from a Lab, without a kernel."""

    name = "fake"

    def pods(self, namespace: str | None = None) -> list[PodInfo]:
        pods = [_pod("default", "web-1", "10.244.0.2", "node-1", app="web", tier="front"),
                _pod("default", "web-2", "10.244.1.2", "node-2", app="web"),
                _pod("default", "client", "10.244.0.3", "node-1", role="client"),
                _pod("kube-system", "coredns", "10.244.0.4", "node-1", **{"k8s-app": "dns"})]
        return [p for p in pods if namespace in (None, p.namespace)]

    def services(self, namespace: str | None = None) -> list[ServiceInfo]:
        ep = SimpleNamespace(ip="10.244.0.2", port=80, pod="default/web-1", node="node-1")
        svcs = [ServiceInfo("default", "web", "ClusterIP", "10.96.0.20", None, None,
                            {"app": "web"}, (_port(ep),)),
                ServiceInfo("default", "lonely", "ClusterIP", "10.96.0.21", None, None,
                            {"app": "nobody"}, (_port(),))]
        return [s for s in svcs if namespace in (None, s.namespace)]

    def ingresses(self, namespace: str | None = None) -> list[IngressInfo]:
        ing = IngressInfo("default", "site", "nginx", ["foo.example"], "172.18.0.240", [80],
                          [("foo.example", "/", "Prefix", "web:80")], [], [])
        return [ing] if namespace in (None, "default") else []

    def nodes(self) -> list[NodeInfo]:
        return [NodeInfo("node-1", "172.18.0.2", "10.244.0.0/24", "10.244.0.1", "vxlan",
                         "aa:bb:cc:dd:ee:01", 3),
                NodeInfo("node-2", "172.18.0.3", "10.244.1.0/24", "10.244.1.1", "vxlan",
                         "aa:bb:cc:dd:ee:02", 1)]

    def namespaces(self) -> list[NamespaceInfo]:
        return [NamespaceInfo(n, {"kubernetes.io/metadata.name": n, **extra})
                for n, extra in (("default", {}), ("kube-system", {}), ("x", {"team": "a"}))]


@pytest.fixture
def get(monkeypatch):
    """get("pods", "-o", "wide") -> (exit code, stdout, stderr), against FakeLab."""
    opened: list[str | None] = []

    def open_lab(lab: str | None) -> FakeLab:
        opened.append(lab)
        return FakeLab()

    monkeypatch.setattr(cli_get, "open_lab", open_lab)

    def _get(*args: str) -> tuple[int, str, str]:
        r = CliRunner().invoke(app, ["get", *args])
        return r.exit_code, r.stdout, r.stderr

    _get.opened = opened  # type: ignore[attr-defined]
    return _get


def _names(stdout: str) -> list[str]:
    return [line.split()[0] for line in stdout.splitlines()[1:] if line.strip()]


@pytest.mark.parametrize("kind", ["pods", "pod", "po", "PODS"])
def test_get_pod_type_names(get, kind: str):
    code, out, _ = get(kind)
    assert code == 0 and out.split()[:5] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert _names(out) == ["web-1", "web-2", "client"]


@pytest.mark.parametrize(("kinds", "first"), [
    (("services", "service", "svc"), "web"), (("endpoints", "ep"), "web"),
    (("ingresses", "ingress", "ing"), "site"), (("nodes", "node", "no"), "node-1"),
    (("namespaces", "namespace", "ns"), "default")])
def test_get_every_type_by_every_name(get, kinds: tuple[str, ...], first: str):
    outputs = {get(k)[1] for k in kinds}
    assert len(outputs) == 1
    assert _names(outputs.pop())[0] == first


def test_get_all_namespaces_adds_the_namespace_column(get):
    code, out, _ = get("pods", "-A")
    assert out.split()[0] == "NAMESPACE" and "coredns" in out and code == 0
    assert "coredns" not in get("pods")[1]
    assert _names(get("pods", "-n", "kube-system")[1]) == ["coredns"]


def test_get_wide_shows_more_columns(get):
    out = get("pods", "-o", "wide")[1]
    assert "LABELS" in out and "app=web,tier=front" in out
    assert "VTEP-MAC" in get("nodes", "-o", "wide")[1]
    assert "team=a" in get("ns", "-o", "wide")[1] and "team=a" not in get("ns")[1]
    assert "team=a" in get("ns", "--show-labels")[1]


def test_get_json_is_a_list_or_the_named_object(get):
    listing = json.loads(get("pods", "-o", "json")[1])
    assert listing["kind"] == "List" and listing["apiVersion"] == "v1"
    assert [i["metadata"]["name"] for i in listing["items"]] == ["web-1", "web-2", "client"]
    pod = json.loads(get("pod", "web-1", "-o", "json")[1])
    assert pod["kind"] == "Pod" and pod["status"]["podIP"] == "10.244.0.2"
    assert json.loads(get("pod/web-1", "-o", "json")[1]) == pod
    assert json.loads(get("pod/web-1", "-o=json")[1]) == pod  # kubectl's spellings
    assert json.loads(get("pod/web-1", "-ojson")[1]) == pod
    two = json.loads(get("pod", "web-1", "web-2", "-o", "json")[1])
    assert two["kind"] == "List" and len(two["items"]) == 2
    ep = json.loads(get("ep", "web", "-o", "json")[1])
    assert ep["kind"] == "Endpoints" and ep["subsets"][0]["addresses"][0]["ip"] == "10.244.0.2"


def test_get_yaml(get):
    node = yaml.safe_load(get("node/node-2", "-o", "yaml")[1])
    assert node["kind"] == "Node" and node["spec"]["podCIDR"] == "10.244.1.0/24"
    ns = yaml.safe_load(get("ns", "-o", "yaml")[1])
    assert ns["kind"] == "List" and ns["items"][2]["metadata"]["labels"]["team"] == "a"


def test_get_name_output_and_several_types(get):
    assert get("pods,svc", "-o", "name")[1].split() == [
        "pod/web-1", "pod/web-2", "pod/client", "service/web", "service/lonely"]
    assert get("pod/client", "svc/web", "ing/site", "-o", "name")[1].split() == [
        "pod/client", "service/web", "ingress.networking.k8s.io/site"]
    code, out, _ = get("po,no")
    assert code == 0 and "pod/web-1" in out and "node/node-1" in out  # a table per type


def test_get_jsonpath(get):
    assert get("pods", "-o", "jsonpath={.items[*].metadata.name}")[1] == "web-1 web-2 client"
    assert get("pod", "web-2", "-o", "jsonpath={.status.podIP}")[1] == "10.244.1.2"
    tpl = 'jsonpath={range .items[*]}{.metadata.name}{"\\t"}{.status.podIP}{"\\n"}{end}'
    assert get("pods", "-l", "app=web", "-o", tpl)[1] == "web-1\t10.244.0.2\nweb-2\t10.244.1.2\n"
    internal = 'jsonpath={.items[*].status.addresses[?(@.type=="InternalIP")].address}'
    assert get("nodes", "-o", internal)[1] == "172.18.0.2 172.18.0.3"


def test_get_unsupported_jsonpath_is_exit_2(get):
    code, _, err = get("pods", "-o", "jsonpath={.items[*].metadata.name}{with .x}")
    assert code == 2 and "unsupported action {with...}" in err
    code, _, err = get("pods", "-o", "jsonpath={.items[*]")
    assert code == 2 and "never closed" in err and get.opened == []  # before the lab


@pytest.mark.parametrize(("selector", "names"), [
    ("app=web", ["web-1", "web-2"]), ("app==web", ["web-1", "web-2"]),
    ("app!=web", ["client"]), ("app in (web, other)", ["web-1", "web-2"]),
    ("app notin (web)", ["client"]), ("tier", ["web-1"]), ("!tier", ["web-2", "client"]),
    ("app=web,!tier", ["web-2"]), ("app=web,role=client", [])])
def test_get_selector(get, selector: str, names: list[str]):
    code, out, _ = get("pods", "-l", selector, "-o", "name")
    assert code == 0 and out.split() == [f"pod/{n}" for n in names]
    assert get("pods", "--selector", selector, "-o", "name")[1] == out


def test_get_selector_on_nodes_and_namespaces(get):
    assert get("no", "-l", "kubernetes.io/hostname=node-2", "-o", "name")[1] == "node/node-2\n"
    assert get("ns", "-l", "team", "-o", "name")[1] == "namespace/x\n"
    assert get("svc", "-l", "app=web", "-o", "name")[1] == ""  # Services carry no labels here
    assert get("svc", "-l", "!app", "-o", "name")[1].split() == ["service/web", "service/lonely"]


def test_get_nothing_found_says_so_like_kubectl(get):
    code, out, err = get("pods", "-l", "app=nope")
    assert code == 0 and out == "" and "No resources found in default namespace." in err
    code, _, err = get("pods", "-n", "empty")
    assert "No resources found in empty namespace." in err
    code, out, _ = get("pods", "-l", "app=nope", "-o", "json")
    assert json.loads(out)["items"] == []


def test_get_missing_name_is_not_found_exit_1(get):
    code, out, err = get("pods", "nope")
    assert code == 1 and out == ""
    assert 'Error from server (NotFound): pods "nope" not found' in err
    code, out, err = get("pod", "web-1", "nope")  # what exists is shown, then the error
    assert code == 1 and _names(out) == ["web-1"] and 'pods "nope" not found' in err
    code, _, err = get("ing/nope")
    assert 'ingresses.networking.k8s.io "nope" not found' in err


@pytest.mark.parametrize(("args", "message"), [
    (["pizzas"], "no resource type 'pizzas'"),
    (["pods,pizzas"], "no resource type 'pizzas'"),
    (["pizza/x"], "no resource type 'pizza'"),
    ([], "say what to get"),
    (["pods", "-l", "app in (web"], "unbalanced parentheses"),
    (["pods", "-l", "app=we b"], "not a valid label value"),
    (["pods", "-l", "a,,b"], "empty requirement"),
    (["pods", "web-1", "-l", "app=web"], "NAMEs or a selector"),
    (["pods", "web-1", "-A"], "across all namespaces"),
    (["pod/web-1", "client"], "all must be"),
    (["pods", "-o", "xml"], "-o xml: this command prints table, wide, json, yaml, name or "
                            "jsonpath=TEMPLATE"),
    (["pods", "-o", "jsonpath"], "needs a template")])
def test_get_bad_input_is_exit_2(get, args: list[str], message: str):
    code, _, err = get(*args)
    assert code == 2, err
    assert message in " ".join(err.split())
    if "resource type" in message or "say what" in message:
        assert "pods (pod, po), services (service, svc), endpoints (endpoint, ep), " \
               "ingresses (ingress, ing), nodes (node, no), namespaces (namespace, ns)" \
               in " ".join(err.split())


def test_lab_has_no_short_flag_l_is_the_selector(get):
    code, out, _ = get("pods", "--lab", "mylab", "-l", "app=web", "-o", "name")
    assert code == 0 and out.split() == ["pod/web-1", "pod/web-2"] and get.opened == ["mylab"]
    for command in ("apply", "delete", "down", "exec", "ping", "probe", "check", "test",
                    "logs", "graph"):
        r = runner.invoke(app, [command, "--help"])
        assert "--lab" in r.output and not re.search(r"-l\b", r.output.replace("--lab", "")), \
            command


# --- status and the other listings share the printers ----------------------------------

@pytest.fixture
def labs(monkeypatch):
    found = [LabStatus("alpha", "ready", "vxlan", 2, 5, 7), LabStatus("beta", "broken")]
    monkeypatch.setattr(api.Lab, "list", staticmethod(lambda: found))


def test_status_formats(labs):
    r = runner.invoke(app, ["status"])
    assert r.exit_code == 0 and r.stdout.split()[:6] == ["NAME", "STATE", "BACKEND", "NODES",
                                                         "PODS", "NETNS"]
    assert runner.invoke(app, ["status", "-o", "name"]).stdout == "lab/alpha\nlab/beta\n"
    doc = json.loads(runner.invoke(app, ["status", "-o", "json"]).stdout)
    assert doc["kind"] == "List" and doc["items"][0] == {
        "name": "alpha", "phase": "ready", "backend": "vxlan", "nodes": 2, "pods": 5, "netns": 7,
        "agent": {"running": False, "pid": None}}
    assert yaml.safe_load(runner.invoke(app, ["status", "-o", "yaml"]).stdout) == doc
    assert runner.invoke(app, ["status", "-o", "jsonpath={.items[*].phase}"]).stdout == \
        "ready broken"
    r = runner.invoke(app, ["status", "-o", "wide"])
    assert r.exit_code == 2 and "table, json, yaml, name or jsonpath=TEMPLATE" in r.stderr


def test_no_labs(monkeypatch):
    monkeypatch.setattr(api.Lab, "list", staticmethod(lambda: []))
    r = runner.invoke(app, ["status"])
    assert r.exit_code == 0 and r.stdout == "" and "no labs are up" in r.stderr


@pytest.mark.parametrize("command", [["check"], ["probe", "a", "b"], ["dns", "x"],
                                     ["trace", "a", "b"], ["explain", "a", "b"],
                                     ["http", "http://x/"], ["test", "x.yaml"]])
def test_reports_refuse_formats_they_cannot_print(command: list[str]):
    r = runner.invoke(app, [*command, "-o", "name"])
    assert r.exit_code == 2 and "-o name: this command prints table, json, yaml or " \
                                "jsonpath=TEMPLATE" in r.stderr


def test_the_command_answers_to_either_name():
    r = runner.invoke(app, ["--help"], prog_name="kube-netlab")
    assert r.exit_code == 0 and "Usage: kube-netlab" in r.output
    r = runner.invoke(app, ["up"], prog_name="kube-netlab")
    assert r.exit_code == 2 and "kube-netlab up -f FILE" in r.stderr
