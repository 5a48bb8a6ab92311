"""What the API returns: plain results and views of a lab's objects, each able to show itself
as Kubernetes would (`to_k8s`: the object as `kubectl get -o json` prints it). Pure: no
kernel, no state file.

A package of modules named for what they show; everything is importable from here."""

from __future__ import annotations

from netlab.views.common import age
from netlab.views.ingresses import (
    IngressClassInfo,
    IngressInfo,
    ingress_class_infos,
    ingress_infos,
    no_controller_message,
)
from netlab.views.nodes import (
    BgpSession,
    NamespaceInfo,
    NodeInfo,
    namespace_infos,
    node_infos,
)
from netlab.views.pods import ContainerStatus, PodInfo, pod_ready
from netlab.views.policies import ClusterPolicyInfo, cluster_policy_infos
from netlab.views.results import ExecResult, LabStatus, PingResult
from netlab.views.services import EndpointSliceInfo, ServiceInfo, service_info
from netlab.views.workloads import JobInfo, WorkloadInfo, job_infos, selector_text, workload_infos

__all__ = [
    "BgpSession",
    "ClusterPolicyInfo",
    "ContainerStatus",
    "EndpointSliceInfo",
    "ExecResult",
    "IngressClassInfo",
    "IngressInfo",
    "JobInfo",
    "LabStatus",
    "NamespaceInfo",
    "NodeInfo",
    "PingResult",
    "PodInfo",
    "ServiceInfo",
    "WorkloadInfo",
    "age",
    "cluster_policy_infos",
    "ingress_class_infos",
    "ingress_infos",
    "job_infos",
    "namespace_infos",
    "no_controller_message",
    "node_infos",
    "pod_ready",
    "selector_text",
    "service_info",
    "workload_infos",
]
