"""Probes in manifests: the docs page's examples load with the API defaults; every mistake
the API server refuses is refused with its wording (exit 2)."""

from __future__ import annotations

import pytest

from netlab.errors import InputError
from netlab.loader import build, read_text
from netlab.model import Probe


def pod(container: str) -> str:
    return ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
            + "".join("  " + line + "\n" for line in container.strip().splitlines()))


def load_container(container: str):
    m = build(read_text(pod(container), "test.yaml"))
    return m.pods["default/p"].spec.containers[0], m.warnings


# From "Configure Liveness, Readiness and Startup Probes" (kubernetes.io).
EXEC_LIVENESS = """
- name: liveness
  image: registry.k8s.io/busybox
  args: [/bin/sh, -c, touch /tmp/healthy; sleep 30; rm -f /tmp/healthy; sleep 600]
  livenessProbe:
    exec:
      command:
      - cat
      - /tmp/healthy
    initialDelaySeconds: 5
    periodSeconds: 5
"""

HTTP_LIVENESS = """
- name: liveness
  image: registry.k8s.io/e2e-test-images/agnhost:2.40
  args: [liveness]
  livenessProbe:
    httpGet:
      path: /healthz
      port: 8080
      httpHeaders:
      - name: Custom-Header
        value: Awesome
    initialDelaySeconds: 3
    periodSeconds: 3
"""

TCP_BOTH = """
- name: goproxy
  image: registry.k8s.io/goproxy:0.1
  ports:
  - containerPort: 8080
  readinessProbe:
    tcpSocket:
      port: 8080
    initialDelaySeconds: 15
    periodSeconds: 10
  livenessProbe:
    tcpSocket:
      port: 8080
    initialDelaySeconds: 15
    periodSeconds: 10
"""

NAMED_PORT_STARTUP = """
- name: app
  image: app
  ports:
  - name: liveness-port
    containerPort: 8080
  livenessProbe:
    httpGet:
      path: /healthz
      port: liveness-port
    failureThreshold: 1
    periodSeconds: 10
    terminationGracePeriodSeconds: 60
  startupProbe:
    httpGet:
      path: /healthz
      port: liveness-port
    failureThreshold: 30
    periodSeconds: 10
"""


def test_docs_exec_liveness():
    c, warnings = load_container(EXEC_LIVENESS)
    assert c.liveness_probe == Probe("exec", command=("cat", "/tmp/healthy"),
                                     initial_delay_seconds=5, period_seconds=5)
    assert c.readiness_probe is None and c.startup_probe is None and warnings == []


def test_docs_http_liveness_with_header():
    c, _ = load_container(HTTP_LIVENESS)
    assert c.liveness_probe == Probe("httpGet", port=8080, path="/healthz",
                                     http_headers=(("Custom-Header", "Awesome"),),
                                     initial_delay_seconds=3, period_seconds=3)


def test_docs_tcp_readiness_and_liveness():
    c, _ = load_container(TCP_BOTH)
    p = Probe("tcpSocket", port=8080, initial_delay_seconds=15, period_seconds=10)
    assert c.readiness_probe == p and c.liveness_probe == p


def test_docs_named_port_and_startup_probe():
    c, warnings = load_container(NAMED_PORT_STARTUP)
    assert c.liveness_probe is not None and c.startup_probe is not None
    assert c.liveness_probe.port == "liveness-port"
    assert c.liveness_probe.failure_threshold == 1
    assert c.liveness_probe.termination_grace_period_seconds == 60
    assert c.startup_probe.failure_threshold == 30 and warnings == []


def test_defaults_and_zero_means_default():
    c, _ = load_container("""
- name: c
  readinessProbe:
    tcpSocket: {port: "80", host: 10.0.0.9}
    periodSeconds: 0
    timeoutSeconds: 0
    successThreshold: 0
    failureThreshold: 0
""")
    p = c.readiness_probe
    assert (p.port, p.host, p.period_seconds, p.timeout_seconds, p.success_threshold,
            p.failure_threshold, p.initial_delay_seconds) == (80, "10.0.0.9", 10, 1, 1, 3, 0)


def test_https_scheme_and_readiness_success_threshold():
    c, _ = load_container("""
- name: c
  readinessProbe:
    httpGet: {port: 8443, scheme: HTTPS, path: /ready, host: example.com}
    successThreshold: 2
""")
    p = c.readiness_probe
    assert (p.scheme, p.path, p.host, p.success_threshold) == ("HTTPS", "/ready",
                                                              "example.com", 2)


def test_unknown_probe_fields_warn():
    _, warnings = load_container("""
- name: c
  readinessProbe:
    tcpSocket: {port: 80}
    frobnicate: 1
""")
    assert any("readinessProbe.frobnicate is not modelled" in w for w in warnings)


def test_probes_are_modelled_not_ignored():
    _, warnings = load_container(TCP_BOTH)
    assert not any("Probe" in w for w in warnings)


@pytest.mark.parametrize(("container", "expected"), [
    ("- name: c\n  livenessProbe: {periodSeconds: 5}",
     "spec.containers[0].livenessProbe: Required value: must specify a handler type"),
    ("- name: c\n  livenessProbe: {exec: {command: [true]}, tcpSocket: {port: 80}}",
     "spec.containers[0].livenessProbe.tcpSocket: Forbidden: may not specify more than 1 "
     "handler type"),
    ("- name: c\n  livenessProbe: {tcpSocket: {port: 80}, successThreshold: 2}",
     "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"),
    ("- name: c\n  startupProbe: {tcpSocket: {port: 80}, successThreshold: 3}",
     "spec.containers[0].startupProbe.successThreshold: Invalid value: 3: must be 1"),
    ("- name: c\n  readinessProbe: {tcpSocket: {port: 80}, terminationGracePeriodSeconds: 5}",
     "readinessProbe.terminationGracePeriodSeconds: Invalid value: 5: must not be set for "
     "readinessProbes"),
    ("- name: c\n  livenessProbe: {tcpSocket: {port: 80}, terminationGracePeriodSeconds: 0}",
     "livenessProbe.terminationGracePeriodSeconds: Invalid value: 0: must be greater than 0"),
    ("- name: c\n  readinessProbe: {tcpSocket: {port: 80}, periodSeconds: -1}",
     "readinessProbe.periodSeconds: Invalid value: -1: must be greater than or equal to 0"),
    ("- name: c\n  readinessProbe: {tcpSocket: {port: 80}, initialDelaySeconds: -5}",
     "initialDelaySeconds: Invalid value: -5: must be greater than or equal to 0"),
    ("- name: c\n  readinessProbe: {tcpSocket: {port: 80}, timeoutSeconds: soon}",
     "readinessProbe.timeoutSeconds: must be an integer"),
    ("- name: c\n  readinessProbe: {exec: {command: []}}",
     "readinessProbe.exec.command: Required value"),
    ("- name: c\n  readinessProbe: {tcpSocket: {}}",
     "readinessProbe.tcpSocket.port: is required"),
    ("- name: c\n  readinessProbe: {tcpSocket: {port: 70000}}",
     "readinessProbe.tcpSocket.port: 70000 is out of range 1-65535"),
    ("- name: c\n  readinessProbe: {tcpSocket: {port: Web_Port}}",
     "readinessProbe.tcpSocket.port: 'Web_Port' is not a valid port name"),
    ("- name: c\n  ports: [{containerPort: 80, name: web}]\n"
     "  readinessProbe: {httpGet: {port: http}}",
     "readinessProbe.httpGet.port: 'http' does not name a containerPort of this container"),
    ("- name: a\n  ports: [{containerPort: 80, name: web}]\n"
     "- name: b\n  readinessProbe: {httpGet: {port: web}}",
     "spec.containers[1].readinessProbe.httpGet.port: 'web' does not name a containerPort"),
    ("- name: c\n  readinessProbe: {httpGet: {port: 80, scheme: FTP}}",
     "readinessProbe.httpGet.scheme: 'FTP' is not one of HTTP, HTTPS"),
    ("- name: c\n  readinessProbe: {httpGet: {port: 80, httpHeaders: [{name: 'X Y', value: z}]}}",
     "httpGet.httpHeaders[0].name: Invalid value: 'X Y': a valid HTTP header must consist of "
     "alphanumeric characters or '-'"),
    ("- name: c\n  livenessProbe: {grpc: {port: 2379}}",
     "spec.containers[0].livenessProbe.grpc: grpc probes are not supported by netlab"),
    ("- name: c\n  livenessProbe: tcp",
     "spec.containers[0].livenessProbe: must be a mapping"),
])
def test_probe_errors(container: str, expected: str):
    with pytest.raises(InputError) as e:
        load_container(container)
    assert expected in str(e.value), str(e.value)
    assert str(e.value).startswith("test.yaml:") and "Pod default/p" in str(e.value)
    assert e.value.exit_code == 2


def test_deployment_template_probes():
    text = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  selector: {matchLabels: {app: d}}
  template:
    metadata: {labels: {app: d}}
    spec:
      containers:
      - name: c
        readinessProbe: {httpGet: {port: 80}, successThreshold: 1}
"""
    m = build(read_text(text, "test.yaml"))
    p = m.deployments["default/d"].template_spec.containers[0].readiness_probe
    assert p == Probe("httpGet", port=80)
