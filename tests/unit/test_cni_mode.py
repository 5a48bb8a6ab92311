"""CNI mode compiled and converged without root: spec.cni is checked at load (exit 2, before
anything is made), pods get kubelet's CNI_ARGS and capability arguments, netlab's own bridge
and hostPort DNAT stand aside, the plugins' result is the truth (pods have no address until
their ADD ran, then exactly the one it returned), and DEL follows a pod out (a fake kernel
with a host-local-like IPAM)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netlab.compile import compile_lab
from netlab.converge import Converger, converge_docs
from netlab.errors import InputError
from netlab.intents import Link
from netlab.kernel.fake import FakeKernel
from netlab.loader import build, read_text
from netlab.state import LabState

CONFIG = """  cni:
    config:
      cniVersion: 1.0.0
      name: cbr0
      plugins:
      - {type: bridge, capabilities: {ipRanges: true}, bridge: cni0, isDefaultGateway: true,
         ipam: {type: host-local}}
      - {type: portmap, capabilities: {portMappings: true}}
"""
CLUSTER = "apiVersion: netlab.dev/v1alpha1\nkind: Cluster\nspec:\n  nodes: 2\n"
POD_B = """---
apiVersion: v1
kind: Pod
metadata: {name: b, labels: {app: b}}
spec: {nodeName: node-2, containers: [{name: c, image: x, ports: [{containerPort: 80}]}]}
"""
PODS = """---
apiVersion: v1
kind: Pod
metadata: {name: a, annotations: {kubernetes.io/ingress-bandwidth: 1M}}
spec: {nodeName: node-1, containers: [{name: c, image: x, ports: [{containerPort: 80,
       hostPort: 8080}]}]}
""" + POD_B + """---
apiVersion: v1
kind: Pod
metadata: {name: h}
spec: {nodeName: node-2, hostNetwork: true, containers: [{name: c, image: x,
       ports: [{containerPort: 9100}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: b}
spec: {selector: {app: b}, ports: [{port: 80}]}
"""
LAB = "nlcni"


def refused(text: str) -> str:
    with pytest.raises(InputError) as e:
        build(read_text(text, "c.yaml"))
    assert e.value.exit_code == 2
    return str(e.value)


@pytest.mark.skipif(not Path("/usr/lib/cni/bridge").exists(), reason="no CNI plugins")
def test_spec_cni_is_checked_at_load(tmp_path: Path):
    c = build(read_text(CLUSTER + CONFIG, "c.yaml")).cluster
    assert c.cni and c.cni_bin_dirs == "/usr/lib/cni" and c.cni_timeout == 10.0
    assert json.loads(c.cni_config)["plugins"][0]["type"] == "bridge"
    assert "plugin 'nosuch' is not in /usr/lib/cni" in refused(
        CLUSTER + CONFIG.replace("type: portmap", "type: nosuch"))
    assert "spec.cni.config.plugins[1].type" in refused(
        CLUSTER + CONFIG.replace("type: portmap", "type: nosuch"))
    assert "spec.cni.config.cniVersion" in refused(CLUSTER + CONFIG.replace("1.0.0", "9.9"))
    assert "give config (a network configuration list" in refused(
        CLUSTER + "  cni: {binDir: /usr/lib/cni}\n")
    assert "binDir: must be an absolute directory" in refused(
        CLUSTER + CONFIG.replace("  cni:\n", "  cni:\n    binDir: lib\n"))
    (tmp_path / "net.conflist").write_text(json.dumps(json.loads(c.cni_config)))
    lab = tmp_path / "lab.yaml"
    lab.write_text(CLUSTER + "  cni: {configFile: net.conflist, timeoutSeconds: 3}\n")
    from_file = build(read_text(lab.read_text(), str(lab))).cluster
    assert json.loads(from_file.cni_config) == json.loads(c.cni_config)  # the file as given
    assert from_file.cni_timeout == 3


def _desired(text: str, found: dict | None = None):
    return compile_lab(LAB, read_text(text, "t.yaml"), cni_addresses=found)


@pytest.mark.skipif(not Path("/usr/lib/cni/bridge").exists(), reason="no CNI plugins")
def test_pods_are_attached_as_kubelet_attaches_them():
    d = _desired(CLUSTER + CONFIG + PODS)
    a, b = d.plan.pods["default/a"], d.plan.pods["default/b"]
    assert (a.ip, b.ip) == ("", "")  # the plugins have not run: no address yet
    assert "default/h" not in d.cni and d.plan.pods["default/h"].ip == "172.18.0.3"
    att = d.cni["default/a"]
    assert (att.node_netns, att.netns, att.ifname) == (d.plan.nodes[0].netns, a.netns, "eth0")
    assert len(att.container_id) == 64
    assert dict(att.cni_args) == {"IgnoreUnknown": "1", "K8S_POD_NAMESPACE": "default",
                                  "K8S_POD_NAME": "a",
                                  "K8S_POD_INFRA_CONTAINER_ID": att.container_id}
    caps = json.loads(att.capability_args)
    assert caps["ipRanges"] == [[{"subnet": "10.244.0.0/24"}]]
    assert caps["portMappings"] == [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]
    assert caps["bandwidth"] == {"ingressRate": 1000000, "ingressBurst": 2**32 - 1}
    assert caps["dns"]["servers"] == ["10.96.0.10"]
    # netlab's own pod network stands aside: no cni0 of its own, no veth, no hostport table
    assert not any(isinstance(i, Link) and i.name == "cni0" for i in d.network)
    assert [type(i).__name__ for i in d.pods["default/a"]] == ["Netns", "Link"]
    assert not any("netlab-hostport" in t.ref for ts in d.rules.values() for t in ts)
    assert "CNI ADD default/a (eth0 in" in d.text()
    # the result is the truth
    found = _desired(CLUSTER + CONFIG + PODS, {"default/a": ("10.244.0.7",),
                                              "default/b": ("10.244.1.9",)})
    assert found.plan.pods["default/a"].ip == "10.244.0.7"
    svc = found.plan.services["default/b"]
    assert [ep.ip for ep in svc.ports[0].endpoints] == ["10.244.1.9"]
    # a hostPort with no portMappings plugin is said to be lost
    no_portmap = _desired(CLUSTER + CONFIG.split("      - {type: portmap")[0] + PODS)
    assert any("no plugin of the CNI network declares the portMappings" in w
               for w in no_portmap.warnings)


@pytest.mark.skipif(not Path("/usr/lib/cni/bridge").exists(), reason="no CNI plugins")
def test_converge_adds_then_compiles_again_and_deletes():
    text = CLUSTER + CONFIG + PODS
    fake = FakeKernel(LAB)
    st = LabState(LAB)
    docs = read_text(text, "t.yaml")
    Converger(fake, st, recompile=lambda found: compile_lab(LAB, docs, cni_addresses=found)
              ).converge(None, compile_lab(LAB, docs), docs)
    a = st.plan.pods["default/a"]
    assert a.ip == "10.244.0.2" and st.plan.pods["default/b"].ip == "10.244.1.2"
    assert st.plan.pods["kube-system/coredns"].ip == "10.244.0.3"
    assert fake.calls["cni_add"] == 3 and len(fake.cni_attached) == 3  # not the hostNetwork pod
    # the endpoints, the DNS zone and the pods' files have the plugins' addresses
    assert st.plan.services["default/b"].ports[0].endpoints[0].ip == "10.244.1.2"
    assert b"10.244.0.2\ta\n" in fake.files["pods/default.a/hosts"]
    # a pod deleted: DEL before its namespace goes; the others keep their addresses
    converge_docs(fake, st, read_text(text.replace(POD_B, ""), "t.yaml"))
    assert fake.calls["cni_del"] == 1 and "default/b" not in st.plan.pods
    assert st.plan.pods["default/a"].ip == "10.244.0.2"
    # an ADD that fails rolls the new pods' attachments back
    broken = FakeKernel(LAB, fail={"cni_add": 2})
    with pytest.raises(Exception, match="injected failure: cni_add #2"):
        Converger(broken, LabState(LAB), recompile=lambda found: compile_lab(
            LAB, docs, cni_addresses=found)).converge(None, compile_lab(LAB, docs), docs)
    assert broken.calls["cni_del"] >= 1 and not broken.cni_attached
