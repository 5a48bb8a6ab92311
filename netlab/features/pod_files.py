"""Files a pod sees in place of the host's: /etc/hosts with its own name (as the kubelet
writes it) and /etc/resolv.conf pointing at the cluster DNS Service (ClusterFirst)."""

from __future__ import annotations

from netlab.model import Cluster
from netlab.plan import PodPlan


def hosts(pod: PodPlan) -> str:
    return ("# Kubernetes-managed hosts file (netlab).\n127.0.0.1\tlocalhost\n"
            "::1\tlocalhost ip6-localhost ip6-loopback\n"
            f"{pod.ip}\t{pod.hostname}\n")


def resolv_conf(cluster: Cluster, pod: PodPlan) -> str:
    d = cluster.cluster_domain
    return (f"search {pod.namespace}.svc.{d} svc.{d} {d}\n"
            f"nameserver {cluster.cluster_dns}\noptions ndots:5\n")
