"""Loading manifests: what loads unchanged, and the one clear error for each mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from netlab.errors import InputError
from netlab.loader import build, load, read_text

ROOT = Path(__file__).resolve().parents[2]

# The seed course's first example, as a user pastes it (busybox pods, sh -c, sleep).
SEED_PODS = """
apiVersion: v1
kind: Pod
metadata:
  name: pod-a
spec:
  containers:
  - name: container-a
    image: busybox
    command: ['sh', '-c', 'echo Hello from pod-A; sleep 3600']
---
apiVersion: v1
kind: Pod
metadata:
  name: pod-b
spec:
  containers:
  - name: container-b
    image: busybox
    command: ['sh', '-c', 'echo Hello from pod-B; sleep 3600']
"""


def load_text(text: str):
    return build(read_text(text, "test.yaml"))


def error_of(text: str) -> InputError:
    with pytest.raises(InputError) as e:
        load_text(text)
    return e.value


def test_seed_pods_load_unchanged():
    m = load_text(SEED_PODS)
    assert sorted(m.pods) == ["default/pod-a", "default/pod-b"]
    a = m.pods["default/pod-a"]
    assert a.spec.containers[0].argv == ("sh", "-c", "echo Hello from pod-A; sleep 3600")
    assert m.cluster is None
    assert m.warnings == []


def test_quickstart_and_builtin_namespaces():
    m = load([ROOT / "scenarios" / "quickstart.yaml"])
    assert m.cluster is not None and [n.name for n in m.cluster.nodes] == ["node-1", "node-2"]
    assert m.namespaces["default"].labels == {"kubernetes.io/metadata.name": "default"}
    assert "kube-system" in m.namespaces
    assert m.deployments["default/web"].replicas == 2


def test_directory_means_every_yaml(tmp_path: Path):
    (tmp_path / "a.yaml").write_text(SEED_PODS.split("---")[0])
    (tmp_path / "b.yaml").write_text(SEED_PODS.split("---")[1])
    (tmp_path / "notes.txt").write_text("not yaml: [")
    assert sorted(load([tmp_path]).pods) == ["default/pod-a", "default/pod-b"]


def test_namespace_gets_metadata_name_label():
    m = load_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: x, labels: {team: a}}\n")
    assert m.namespaces["x"].labels == {"team": "a", "kubernetes.io/metadata.name": "x"}


def test_other_kinds_are_parsed_not_rejected():
    m = load_text("""
apiVersion: v1
kind: Service
metadata: {name: my-service}
spec:
  selector: {app: MyApp}
  ports: [{protocol: TCP, port: 80, targetPort: 9376}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: test-network-policy, namespace: default}
spec:
  podSelector: {matchLabels: {role: db}}
  policyTypes: [Ingress, Egress]
  ingress:
  - from:
    - ipBlock: {cidr: 172.17.0.0/16, except: [172.17.1.0/24]}
    - namespaceSelector: {matchLabels: {project: myproject}}
    - podSelector: {matchLabels: {role: frontend}}
    ports: [{protocol: TCP, port: 6379}]
  egress:
  - to: [{ipBlock: {cidr: 10.0.0.0/24}}]
    ports: [{protocol: TCP, port: 5978}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: minimal-ingress
  annotations: {nginx.ingress.kubernetes.io/rewrite-target: /}
spec:
  ingressClassName: nginx-example
  rules:
  - http:
      paths:
      - path: /testpath
        pathType: Prefix
        backend: {service: {name: test, port: {number: 80}}}
---
apiVersion: v1
kind: Secret
metadata: {name: s}
type: Opaque
data: {password: cGFzcw==}
""")
    assert m.services["default/my-service"].ports[0].target_port == 9376
    pol = m.network_policies["default/test-network-policy"]
    assert pol.ingress[0].peers[0].ip_block.except_ == ("172.17.1.0/24",)
    assert pol.policy_types == ("Ingress", "Egress")
    assert m.ingresses["default/minimal-ingress"].rules[0].paths[0].backend.port_number == 80
    assert m.secrets["default/s"].data == {"password": b"pass"}


def test_policy_types_default():
    m = load_text("""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p}
spec:
  podSelector: {}
  egress: [{}]
""")
    assert m.network_policies["default/p"].policy_types == ("Ingress", "Egress")


def test_unknown_kind_is_a_warning_and_skipped():
    m = load_text("apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: c}\n"
                  "---\n" + SEED_PODS)
    assert any("PersistentVolumeClaim" in w and "skipped" in w for w in m.warnings)
    assert len(m.pods) == 2


def test_unmodelled_fields_warn():
    m = load_text(SEED_PODS.replace("image: busybox", "image: busybox\n    workingDir: /x"))
    assert any("spec.containers[0].workingDir" in w for w in m.warnings)


@pytest.mark.parametrize(("text", "expected"), [
    ("kind: Pod\nmetadata: {name: a\n", "invalid YAML"),
    ("apiVersion: v1\nkind: Pod\nmetadata: {}\nspec: {containers: [{name: c}]}\n",
     "metadata.name: is required"),
    ("apiVersion: v1\nkind: Pod\nmetadata: {name: Pod_A}\nspec: {containers: [{name: c}]}\n",
     "metadata.name: 'Pod_A' is not a valid Pod name"),
    ("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: []}\n",
     "spec.containers: must list at least one container"),
    ("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n"
     "spec: {containers: [{name: c, ports: [{containerPort: 70000}]}]}\n",
     "spec.containers[0].ports[0].containerPort: 70000 is out of range 1-65535"),
    ("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n"
     "spec: {containers: [{name: c, ports: [{containerPort: 80, protocol: ICMP}]}]}\n",
     "'ICMP' is not one of TCP, UDP, SCTP"),
    ("apiVersion: v2\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c}]}\n",
     "apiVersion: 'v2' is not supported for Pod: use v1"),
    ("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 0}]}\n",
     "spec.ports[0].port: 0 is out of range 1-65535"),
    ("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n"
     "spec: {type: ClusterIP, ports: [{port: 80, nodePort: 30080}]}\n",
     "nodePort: may not be set for type ClusterIP"),
    ("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\n"
     "spec: {podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/33}}]}]}\n",
     "spec.ingress[0].from[0].ipBlock.cidr: '10.0.0.0/33' is not a valid IPv4 CIDR"),
    ("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\n"
     "spec: {podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/24, "
     "except: [10.1.0.0/24]}}]}]}\n", "is not inside cidr"),
    ("apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: i}\nspec: {rules: "
     "[{http: {paths: [{path: x, pathType: Prefix, backend: {service: {name: s, port: "
     "{number: 80}}}}]}}]}\n", "must be an absolute path"),
    ("apiVersion: v1\nkind: Secret\nmetadata: {name: t}\ntype: kubernetes.io/tls\n"
     "data: {tls.crt: eA==}\n", "needs 'tls.key'"),
    ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  selector: "
     "{matchLabels: {app: x}}\n  template:\n    metadata: {labels: {app: y}}\n    spec: "
     "{containers: [{name: c}]}\n", "does not match template.metadata.labels"),
])
def test_errors_name_file_object_field(text: str, expected: str):
    e = error_of(text)
    assert expected in str(e)
    assert str(e).startswith("test.yaml:"), str(e)
    assert e.exit_code == 2


def test_duplicate_objects():
    e = error_of(SEED_PODS + "---\n" + SEED_PODS.split("---")[0])
    assert "Pod default/pod-a" in str(e) and "duplicate object" in str(e)
    assert "test.yaml:" in str(e)


def test_invalid_yaml_names_line():
    e = error_of("apiVersion: v1\nkind: Pod\nmetadata:\n  name: [a\n")
    assert e.line is not None and e.file == "test.yaml"


CLUSTER = "apiVersion: netlab.dev/v1alpha1\nkind: Cluster\nspec:\n"


@pytest.mark.parametrize(("spec", "expected"), [
    ("  podCIDR: 10.244.0.1/16\n", "spec.podCIDR: '10.244.0.1/16' is not a valid CIDR"),
    ("  serviceCIDR: 10.244.128.0/20\n", "serviceCIDR: 10.244.128.0/20 overlaps podCIDR"),
    ("  nodes: [{name: a, podCIDR: 10.9.0.0/24}]\n", "is outside the cluster podCIDR"),
    ("  nodes: [{name: a, podCIDR: 10.244.0.0/24}, {name: b, podCIDR: 10.244.0.0/23}]\n",
     "overlaps node a's"),
    ("  nodes: [a, a]\n", "duplicate node name 'a'"),
    ("  nodes: 0\n", "spec.nodes: 0 is out of range 1-64"),
    ("  backend: udp\n", "'udp' is not one of vxlan, host-gw"),
    ("  clusterDNS: 10.0.0.10\n", "is not inside serviceCIDR"),
])
def test_cluster_errors(spec: str, expected: str):
    assert expected in str(error_of(CLUSTER + spec))


def test_cluster_nodes_by_count_and_own_cidr():
    m = load_text(CLUSTER + "  nodes: 3\n  backend: host-gw\n  mtu: 9000\n")
    assert [n.name for n in m.cluster.nodes] == ["node-1", "node-2", "node-3"]
    assert m.cluster.pod_mtu == 9000
    m = load_text(CLUSTER + "  nodes: [{name: a, podCIDR: 10.244.7.0/24}, b]\n")
    assert m.cluster.nodes[0].pod_cidr == "10.244.7.0/24"
