"""backend bgp, pure: the Cluster's bgp settings, each speaker's bird.conf (golden, and
accepted by `bird -p`), the sessions (full mesh, route reflector, external eBGP), what the
lab waits for, and birdc's protocol table read back.

Regenerate the goldens after an intended change with: NETLAB_UPDATE_GOLDEN=1 pytest tests/unit
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from netlab.compile import compile_lab
from netlab.errors import InputError
from netlab.features import bgp
from netlab.loader import read_text

GOLDEN = Path(__file__).parent / "golden" / "bgp"
PODS = """---
apiVersion: v1
kind: Pod
metadata: {name: a}
spec: {nodeName: node-1, containers: [{name: c, ports: [{containerPort: 80}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: lb}
spec: {type: LoadBalancer, selector: {x: y}, ports: [{port: 80}]}
"""
LABS = {
    "mesh": "spec: {nodes: 3, backend: bgp}",
    "reflector-dual-stack": ("spec: {nodes: 3, backend: bgp, podCIDR: '10.244.0.0/16,"
                             "fd00:10:244::/56', serviceCIDR: '10.96.0.0/16,fd00:10:96::/112',"
                             " bgp: {routeReflector: node-1}}"),
    "external": "spec: {nodes: 2, backend: bgp, bgp: {external: true, asNumber: 65000}}",
    "ipv6-only": ("spec: {nodes: 2, backend: bgp, podCIDR: 'fd00:10:244::/56', "
                  "serviceCIDR: 'fd00:10:96::/112'}"),
}


def lab(name: str):
    text = f"apiVersion: netlab.dev/v1alpha1\nkind: Cluster\n{LABS[name]}\n{PODS}"
    return compile_lab("b", read_text(text))


@pytest.mark.parametrize("name", sorted(LABS))
def test_bird_conf_golden_and_accepted_by_bird(name: str, tmp_path: Path):
    desired = lab(name)
    speakers = bgp.speakers(desired.plan)
    assert speakers[:2] == ["node-1", "node-2"]
    for speaker in speakers:
        f = desired.files[f"bgp/{speaker}/bird.conf"]
        assert f.reload is not None and f.reload.check[:2] == ("bird", "-p")
        path = GOLDEN / f"{name}-{speaker}.conf"
        if os.environ.get("NETLAB_UPDATE_GOLDEN"):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(f.data)
        assert f.data == path.read_bytes(), speaker
        if shutil.which("bird"):  # scripts/setup.sh installs bird2
            conf = tmp_path / f"{speaker}.conf"
            conf.write_bytes(f.data)
            r = subprocess.run(["bird", "-p", "-c", str(conf)], capture_output=True,
                               text=True, check=False)
            assert r.returncode == 0, r.stderr


def test_sessions_full_mesh_reflector_and_external():
    mesh = lab("mesh").plan
    assert [(p[0], p[1]) for p in bgp.peers(mesh, mesh.node("node-2"))] == [
        ("node_1_v4", "172.18.0.2"), ("node_3_v4", "172.18.0.4")]
    rr = lab("reflector-dual-stack").plan
    # clients peer with the reflector only, per family; the reflector with every client
    assert [p[0] for p in bgp.peers(rr, rr.node("node-3"))] == ["node_1_v4", "node_1_v6"]
    assert [(p[0], p[3]) for p in bgp.peers(rr, rr.node("node-1"))] == [
        ("node_2_v4", True), ("node_3_v4", True), ("node_2_v6", True), ("node_3_v6", True)]
    ext = lab("external").plan
    assert bgp.speakers(ext) == ["node-1", "node-2", "external"]
    assert ("external_v4", ext.external_ip, 64513, False) in bgp.peers(ext, ext.node("node-1"))


def test_nothing_between_nodes_is_written_by_netlab_and_bird_is_waited_for():
    desired = lab("reflector-dual-stack")
    from netlab.intents import Route

    node1 = desired.plan.node("node-1").netns
    assert not [i for i in desired.network if isinstance(i, Route) and i.netns == node1
                and i.dst.startswith(("10.244.", "fd00:10:244:"))]
    when = desired.ready[("node/node-1", "bird")]
    assert when.netns == node1
    assert set(when.routes) == {"10.244.1.0/24", "10.244.2.0/24", "fd00:10:244:1::/64",
                                "fd00:10:244:2::/64"}
    (p,) = desired.workloads["node/node-1"].processes
    assert p.argv[:2] == ("bird", "-f") and "-s" in p.argv
    # while waiting, every speaker's control socket is woken (BIRD < 2.14's lost wake-up):
    # a stuck sender is another node than the one whose routes are missing
    assert when.wake == ("bgp/node-1/bird.ctl", "bgp/node-2/bird.ctl", "bgp/node-3/bird.ctl")
    assert p.argv[p.argv.index("-s") + 1].endswith("/" + when.wake[0])


def test_the_lb_address_goes_to_the_external_router_only():
    desired = lab("external")
    svc = desired.plan.services["default/lb"]
    conf = desired.files[f"bgp/{svc.announcer}/bird.conf"].data.decode()
    assert f"route {svc.lb_ip}/32 blackhole;" in conf
    assert 'export where proto = "pods4";' in conf  # iBGP: the pod block only
    assert "export where source = RTS_STATIC;" in conf  # eBGP: blocks and LB addresses


@pytest.mark.parametrize(("spec", "message"), [
    ("{nodes: 2, backend: vxlan, bgp: {asNumber: 65000}}", "is for backend bgp"),
    ("{nodes: 2, backend: bgp, bgp: {routeReflector: node-9}}", "'node-9' is not a node"),
    ("{nodes: 2, backend: bgp, bgp: {externalAS: 64512}}", "the cluster's own AS"),
    ("{nodes: 2, backend: bgp, bgp: {asNumber: 0}}", "asNumber"),
])
def test_bad_bgp_settings_are_refused(spec: str, message: str):
    with pytest.raises(InputError) as e:
        compile_lab("b", read_text(f"apiVersion: netlab.dev/v1alpha1\nkind: Cluster\n"
                                   f"spec: {spec}\n"))
    assert message in str(e.value)


def test_birdc_protocols_are_read():
    text = """BIRD 2.0.12 ready.
Name       Proto      Table      State  Since         Info
device1    Device     ---        up     16:40:00.000
pods4      Static     master4    up     16:40:00.000
node_2_v4  BGP        ---        up     16:40:01.123  Established
node_3_v4  BGP        ---        start  16:40:05.000  Active        Socket: Connection refused
"""
    assert bgp.parse_protocols(text) == [
        ("node_2_v4", "up", "Established"),
        ("node_3_v4", "start", "Active        Socket: Connection refused")]


def test_graph_draws_the_sessions():
    from netlab.graph import _id, render_dot

    dot = render_dot(lab("reflector-dual-stack").plan)
    sessions = [line for line in dot.splitlines() if "BGP" in line]
    # the reflector's two sessions (one edge per pair, both families), no client-to-client
    assert len(sessions) == 2 and all("(route reflector)" in s for s in sessions)
    assert not any(f"{_id('node-2', 'eth0')} -> {_id('node-3', 'eth0')}" in s
                   for s in sessions)
    ext = render_dot(lab("external").plan)
    assert f"-> {_id('external')} " in ext and "eBGP AS 65000 - AS 64513" in ext
