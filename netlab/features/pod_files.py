"""The /etc/hosts a pod sees in place of the host's, as the kubelet writes it: its own name,
and with a subdomain its fully qualified name, then the pod's spec.hostAliases.
(/etc/resolv.conf: netlab.features.dns.)"""

from __future__ import annotations

from netlab.model import Cluster
from netlab.plan import PodPlan


def hosts(cluster: Cluster, pod: PodPlan) -> str:
    names = pod.hostname
    if pod.subdomain:
        names = (f"{pod.hostname}.{pod.subdomain}.{pod.namespace}.svc."
                 f"{cluster.cluster_domain}\t{pod.hostname}")
    text = ("# Kubernetes-managed hosts file (netlab).\n127.0.0.1\tlocalhost\n"
            "::1\tlocalhost ip6-localhost ip6-loopback\n"
            + "".join(f"{ip}\t{names}\n" for ip in (pod.ip, pod.ip6) if ip))  # per pod IP
    if pod.host_aliases:  # hostsEntriesFromHostAliases: one line per IP, tab-separated
        text += "\n# Entries added by HostAliases.\n" + "".join(
            f"{ip}\t{chr(9).join(hostnames)}\n" for ip, hostnames in pod.host_aliases)
    return text
