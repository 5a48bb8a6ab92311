"""CNI mode (Cluster spec.cni): what the runtime hands the plugins for each pod, as kubelet
and containerd's CRI plugin do. Pure: the attachments are data; netlab.kernel.cni runs them.

- CNI_ARGS: IgnoreUnknown=1, K8S_POD_NAMESPACE, K8S_POD_NAME, K8S_POD_INFRA_CONTAINER_ID (the
  sandbox's id: here a hash of the lab, the pod and its spec, so a re-created pod is a new
  sandbox).
- capability arguments (libcni puts each into runtimeConfig only for a plugin that declares
  the capability): `ipRanges` the node's podCIDRs, one range set per family (host-local's
  `"subnet": "usePodCidr"` takes them); `portMappings` the pod's hostPorts (portmap);
  `bandwidth` from the kubernetes.io/ingress-bandwidth and egress-bandwidth annotations
  (bandwidth); `dns` the pod's cluster DNS settings.
- hostNetwork pods get no attachment: kubelet calls no plugin for them.
"""

from __future__ import annotations

import hashlib
import json

from netlab.cni import pod_cni_args
from netlab.features import dns
from netlab.intents import CniAttachment
from netlab.plan import Plan, PodPlan

IFNAME = "eth0"
INGRESS, EGRESS = "kubernetes.io/ingress-bandwidth", "kubernetes.io/egress-bandwidth"
_MIN_RATE, _MAX_RATE = 1000, 10**15  # kubelet: at least 1kbit, at most 1Pbit
_BURST = 2**32 - 1  # containerd's toCNIBandWidth: no burst limit (math.MaxUint32)


def container_id(plan: Plan, pod: PodPlan) -> str:
    return hashlib.sha256(f"{plan.lab}/{pod.key}/{pod.spec_hash}".encode()).hexdigest()


def bandwidth(pod: PodPlan) -> tuple[dict[str, int], list[str]]:
    """The bandwidth capability argument from the pod's annotations (bits per second, as
    resource quantities: 10M is 10 Mbit/s), and warnings for values kubelet refuses."""
    from netlab.loader import quantity_bytes

    out: dict[str, int] = {}
    warnings = []
    for key, name in ((INGRESS, "ingress"), (EGRESS, "egress")):
        text = pod.annotations.get(key)
        if text is None:
            continue
        rate = quantity_bytes(text)
        if rate is None or not _MIN_RATE <= rate <= _MAX_RATE:
            warnings.append(f"Pod {pod.key}: annotation {key}: {text!r} is not a rate between "
                            "1k and 1P bits per second: ignored")
            continue
        out[f"{name}Rate"], out[f"{name}Burst"] = rate, _BURST
    return out, warnings


def attachment(plan: Plan, pod: PodPlan) -> tuple[CniAttachment, list[str]]:
    node = plan.node(pod.node)
    cid = container_id(plan, pod)
    caps: dict[str, object] = {
        "ipRanges": [[{"subnet": node.of("pod_cidr", f)}] for f in plan.cluster.families]}
    if pod.host_ports:  # containerd: lower-case protocol, hostIP only when set
        caps["portMappings"] = [{"hostPort": hp, "containerPort": cp,
                                 "protocol": proto.lower(), **({"hostIP": ip} if ip else {})}
                                for proto, ip, hp, cp in pod.host_ports]
    rates, warnings = bandwidth(pod)
    if rates:
        caps["bandwidth"] = rates
    conf = dns.resolv_conf(plan.cluster, pod, plan.internet(plan.cluster.primary))
    servers = [line.split()[1] for line in conf.splitlines() if line.startswith("nameserver")]
    searches = next((line.split()[1:] for line in conf.splitlines()
                     if line.startswith("search")), [])
    options = next((line.split()[1:] for line in conf.splitlines()
                    if line.startswith("options")), [])
    caps["dns"] = {"servers": servers, "searches": searches, "options": options}
    args = pod_cni_args(pod.namespace, pod.name, cid)
    return CniAttachment(pod.key, node.netns, pod.netns, cid, IFNAME,
                         tuple((str(k), str(v)) for k, v in args),
                         json.dumps(caps, sort_keys=True, separators=(",", ":"))), warnings


def attachments(plan: Plan) -> tuple[dict[str, CniAttachment], list[str]]:
    """Every pod's attachment (hostNetwork pods have none), and warnings."""
    out: dict[str, CniAttachment] = {}
    warnings: list[str] = []
    if not plan.cluster.cni:
        return out, warnings
    for key, pod in plan.pods.items():
        if pod.host_network:
            continue
        out[key], w = attachment(plan, pod)
        warnings += w
    return out, warnings
