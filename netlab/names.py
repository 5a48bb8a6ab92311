"""Names of everything a lab creates, and the markers that tie them to their lab.

Every network namespace of lab L is /run/netns/netlab.L.<role>[.<more>]. Lab and
namespace names are DNS-1123 labels (no dots) and a pod's name (a DNS-1123 subdomain,
which may hold dots) comes last, so the dotted form is unambiguous, and `netlab down`
can find all of a lab by prefix even when its state file was never written. A name too
long for a file name (255 bytes) is cut and marked with a hash of the whole. Interface
names live inside lab namespaces only and are kept within the kernel's 15-character
limit (IFNAMSIZ - 1).
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
from pathlib import Path

NETNS_DIR = Path("/run/netns")
STATE_ROOT = Path(os.environ.get("NETLAB_STATE_DIR", "/run/netlab"))
NETNS_PREFIX = "netlab."
IFNAMSIZ = 15

# Interface names inside node and pod namespaces (fixed, like a real node's).
POD_IFACE = "eth0"
NODE_UNDERLAY_IFACE = "eth0"
NODE_BRIDGE = "cni0"
NODE_VXLAN = "flannel.1"
NODE_VXLAN6 = "flannel-v6.1"  # flannel's IPv6 VXLAN device (dual-stack)
FABRIC_BRIDGE = "underlay"

# Interface indices requested at creation. Knowing every index in advance lets the
# gateway send a namespace's whole configuration as one netlink batch, with no
# lookups in between (the kernel honours `ifi_index` on RTM_NEWLINK, `ip link add
# index N`). Values are above anything the kernel gives fallback devices.
INDEX_UNDERLAY_BRIDGE = 100
INDEX_NODE_ETH0 = 100
INDEX_NODE_BRIDGE = 101
INDEX_NODE_VXLAN = 102
INDEX_NODE_VXLAN6 = 103
# LoadBalancer addresses a node announces, and the internet host's outside address, sit on
# `lo` (/32): this kernel has no dummy devices (CONFIG_DUMMY is off), and a local address
# on lo is enough for the kernel to answer ARP for it on eth0 (arp_ignore=0).
INDEX_NODE_LB = 1
INDEX_HOST_ETH0 = 100
INDEX_HOST_WAN = 1
NODE_LB = "lo"
HOSTS = ("internet", "external")  # machines outside the cluster, on the underlay
INDEX_POD_ETH0 = 100
INDEX_PORT_BASE = 1000  # fabric ports: 1000 + node number; node veths: 1000 + pod slot

DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
LAB_NAME_MAX = 40
FILE_NAME_MAX = 255  # NAME_MAX: a network namespace's or a pod directory's name
HOSTNAME_MAX = 63  # the kubelet cuts a pod's hostname to 63 characters
AGENT_PID_FILE = "agent.pid"  # in the lab's state directory: "PID STARTTIME" of its agent


def is_dns1123_label(name: str) -> bool:
    """Namespace names, container names, hostnames (IsDNS1123Label)."""
    return len(name) <= 63 and DNS1123_LABEL.fullmatch(name) is not None


def is_dns1123_subdomain(name: str) -> bool:
    """Most object names: Pod, Deployment, Secret, ConfigMap, Ingress... (IsDNS1123Subdomain)."""
    return len(name) <= 253 and DNS1123_SUBDOMAIN.fullmatch(name) is not None


def is_dns1035_label(name: str) -> bool:
    """Service names (IsDNS1035Label): a label that starts with a letter."""
    return len(name) <= 63 and DNS1035_LABEL.fullmatch(name) is not None


def pod_hostname(name: str) -> str:
    """A pod's hostname from its name (or spec.hostname) as the kubelet makes it
    (truncatePodHostnameIfNeeded): at most 63 characters, not ending in '-' or '.'."""
    return name if len(name) <= HOSTNAME_MAX else name[:HOSTNAME_MAX].rstrip("-.")


def fit(head: str, tail: str, limit: int = FILE_NAME_MAX) -> str:
    """`head + tail`, with `tail` (a name) cut and marked with '_' and a hash of it when the
    whole would be longer than `limit`: two long names that share a beginning stay apart,
    and no Kubernetes name holds a '_'. For file names, and nft chain names (255 too)."""
    if len(head) + len(tail) <= limit:
        return head + tail
    digest = _digest(tail)[:10]
    return f"{head}{tail[:max(limit - len(head) - 11, 0)]}_{digest}"


def check_lab_name(name: str) -> str:
    """Return `name` if it is a usable lab name, else raise InputError."""
    from netlab.errors import InputError

    if not is_dns1123_label(name) or len(name) > LAB_NAME_MAX:
        raise InputError(
            f"lab name {name!r} is not valid: use at most {LAB_NAME_MAX} lower-case letters, "
            "digits and '-', starting and ending with a letter or digit"
        )
    return name


def lab_prefix(lab: str) -> str:
    return f"{NETNS_PREFIX}{lab}."


def fabric_netns(lab: str) -> str:
    return f"{lab_prefix(lab)}fabric"


def node_netns(lab: str, node: str) -> str:
    return f"{lab_prefix(lab)}node.{node}"


def host_netns(lab: str, host: str) -> str:
    """A machine outside the cluster on the underlay (`external`, `internet`)."""
    return f"{lab_prefix(lab)}host.{host}"


def pod_netns(lab: str, namespace: str, pod: str) -> str:
    return fit(f"{lab_prefix(lab)}pod.{namespace}.", pod)


def lab_of_netns(netns: str) -> str | None:
    """The lab a namespace name belongs to, or None if it is not netlab's."""
    if not netns.startswith(NETNS_PREFIX):
        return None
    rest = netns[len(NETNS_PREFIX):]
    lab, _, role = rest.partition(".")
    return lab if role and is_dns1123_label(lab) else None


def _digest(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()


def pod_veth(namespace: str, pod: str, salt: int = 0) -> str:
    """Node-side veth of a pod: `veth` + 8 hex digits, like flannel's bridge CNI."""
    suffix = f"/{salt}" if salt else ""
    return "veth" + _digest(namespace, pod + suffix)[:8]


def fabric_port(node: str) -> str:
    """Fabric-side veth of a node's eth0."""
    return "n" + _digest("node", node)[:8]


def host_port(host: str) -> str:
    return "h" + _digest("host", host)[:8]


def _local_mac(*parts: str) -> str:
    """A stable locally administered unicast MAC."""
    d = bytes.fromhex(_digest(*parts)[:12])
    return ":".join(f"{b:02x}" for b in ((d[0] & 0xFC) | 0x02, *d[1:]))


def vtep_mac(lab: str, node: str) -> str:
    """The VXLAN device's MAC, chosen by the plan and published to the other nodes
    (flannel publishes it in the node's annotations; nothing learns it from the wire)."""
    return _local_mac("vtep", lab, node)


def vtep6_mac(lab: str, node: str) -> str:
    """The IPv6 VXLAN device's MAC (flannel-v6.1 has its own, published apart:
    flannel.alpha.coreos.com/backend-v6-data)."""
    return _local_mac("vtep6", lab, node)


def bridge_mac(lab: str, node: str) -> str:
    """cni0's MAC, set when it is made. A bridge left to itself takes the lowest MAC of its
    ports and changes it as pods come and go; a pod whose ARP entry for its gateway still
    holds a MAC that left with a deleted pod's veth then sends into the void until the entry
    is re-validated (tens of seconds). A MAC set by the user is never changed."""
    return _local_mac("cni0", lab, node)


def pod_mac(ip: str) -> str:
    """A pod's eth0 MAC derived from its address (0a:58 + the IPv4 bytes, as kubenet and the
    CNI bridge plugin of Kubernetes 1.x did): a pod re-created with the same address keeps
    its MAC, so the ARP entries its node and neighbours hold for it stay right. An IPv6-only
    pod: 0a:58 + the address's last four bytes (unique on its node's bridge, where the
    pod's slot is the host part)."""
    if ":" in ip:
        return "0a:58:" + ":".join(f"{b:02x}" for b in ipaddress.IPv6Address(ip).packed[-4:])
    return "0a:58:" + ":".join(f"{int(b):02x}" for b in ip.split("."))


def lab_dir(lab: str) -> Path:
    return STATE_ROOT / lab


def pod_dir(lab: str, namespace: str, pod: str) -> Path:
    return lab_dir(lab) / "pods" / fit(f"{namespace}.", pod)
