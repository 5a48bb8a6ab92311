"""The CNI runtime with Debian's real reference plugins (/usr/lib/cni) inside a lab's node
namespace: bridge + host-local + portmap ADD a pod namespace, CHECK it and DEL it. The
plugins' host-side work (the bridge's veth, portmap's rules) lands in the node's namespace
and nothing in the host's; host-local keeps its state in the dataDir given, not in
/var/lib/cni."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from netlab import names
from netlab.cni import CniPluginError, parse_conflist, pod_cni_args
from netlab.kernel.cni import CniRuntime
from netlab.kernel.linux import netns_path

BIN = "/usr/lib/cni"
# One node, no pods: node-1's pod range is 10.250.0.0/24, so netlab's own cni0 already holds
# the gateway 10.250.0.1/24 the bridge plugin wants (it accepts an existing bridge that has
# its address). No DNS add-on, so no pod takes 10.250.0.2 before the plugins do.
LAB = """
apiVersion: netlab.dev/v1alpha1
kind: Cluster
spec: {nodes: 1, podCIDR: 10.250.0.0/16, dns: false}
"""
CONTAINER_ID = "0123456789abcdef0123456789abcdef"
NETWORK = "cnitest-net"


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)


def inside(netns: Path, *argv: str) -> subprocess.CompletedProcess:
    return run("nsenter", f"--net={netns}", "--", *argv)


def test_real_plugins_add_check_and_del_a_pod_from_the_node_namespace(netlab_lab, tmp_path):
    for plugin in ("bridge", "host-local", "portmap"):
        if not Path(BIN, plugin).exists():
            pytest.skip(f"{BIN}/{plugin} is missing: scripts/setup.sh installs "
                        "containernetworking-plugins")
    var_lib_cni = Path("/var/lib/cni").exists()
    lab = netlab_lab(yaml=LAB)
    node_ns = netns_path(lab.plan.nodes[0].netns)
    pod_name = names.lab_prefix(lab.name) + "pod.cnitest"
    pod_ns = netns_path(pod_name)
    data_dir = tmp_path / "ipam"
    conflist = parse_conflist(json.dumps({
        "cniVersion": "1.0.0", "name": NETWORK,
        "plugins": [
            {"type": "bridge", "bridge": "cni0", "isGateway": True, "ipMasq": False,
             "hairpinMode": True,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.250.0.0/24"}]],
                      "routes": [{"dst": "0.0.0.0/0"}], "dataDir": str(data_dir)}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ]}))
    args = pod_cni_args("default", "cnitest", CONTAINER_ID)
    caps = {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]}
    runtime = CniRuntime([BIN], node_ns, tmp_path / "cache")
    cache_file = tmp_path / "cache" / "results" / f"{NETWORK}-{CONTAINER_ID}-eth0"

    assert run("ip", "netns", "add", pod_name).returncode == 0
    try:
        assert runtime.version_problems(conflist) == []
        result = runtime.add(conflist, CONTAINER_ID, pod_ns, "eth0", args, caps)

        # the pod: its address, and a default route via the bridge's gateway
        assert result.pod_ips("eth0", str(pod_ns)) == ("10.250.0.2",)
        assert "inet 10.250.0.2/24" in inside(pod_ns, "ip", "-o", "addr", "show", "eth0").stdout
        assert "default via 10.250.0.1 dev eth0" in inside(pod_ns, "ip", "route").stdout

        # the host side is in the node's namespace: the plugin's veth on its cni0
        host_veths = [i.name for i in result.interfaces if not i.sandbox and i.name != "cni0"]
        assert len(host_veths) == 1
        veth = host_veths[0]
        assert "master cni0" in inside(node_ns, "ip", "-o", "link", "show", veth).stdout
        assert "inet 10.250.0.1/24" in inside(node_ns, "ip", "-o", "addr", "show",
                                               "cni0").stdout
        assert "CNI-HOSTPORT-DNAT" in inside(node_ns, "nft", "list", "ruleset").stdout
        # ... and nothing in the host's
        assert run("ip", "link", "show", "cni0").returncode != 0
        assert run("ip", "link", "show", veth).returncode != 0
        assert "CNI-HOSTPORT" not in run("nft", "list", "ruleset").stdout

        # real packets: the pod reaches its gateway through the veth and the bridge
        ping = inside(pod_ns, "ping", "-c", "1", "-W", "2", "10.250.0.1")
        assert ping.returncode == 0, ping.stdout + ping.stderr

        # host-local's state is in the dataDir given; the cache record is written
        assert (data_dir / NETWORK / "10.250.0.2").read_text().startswith(CONTAINER_ID)
        assert cache_file.exists()

        try:
            runtime.check(conflist, CONTAINER_ID, pod_ns, "eth0", args, caps)
        except CniPluginError as e:
            # Debian 12's portmap (1.1.1) CHECKs an IPv6 DNAT chain that an IPv4-only pod
            # never gets (containernetworking/plugins#819, fixed upstream). CHECK runs in
            # order, so bridge (and host-local) passed; without port mappings portmap's
            # CHECK has nothing to look for, and the whole list passes.
            if not (e.plugin == "portmap" and "could not check ipv6 dnat" in e.msg):
                raise
            runtime.check(conflist, CONTAINER_ID, pod_ns, "eth0", args, {})

        runtime.delete(conflist, CONTAINER_ID, pod_ns, "eth0", args, caps)
        assert inside(pod_ns, "ip", "link", "show", "eth0").returncode != 0
        assert inside(node_ns, "ip", "link", "show", veth).returncode != 0
        assert not (data_dir / NETWORK / "10.250.0.2").exists()
        assert not cache_file.exists()
    finally:
        run("ip", "netns", "del", pod_name)
    assert not pod_ns.exists()
    assert Path("/var/lib/cni").exists() == var_lib_cni
