"""The loader validates as the Kubernetes API server does (issue 14): object names by kind,
labels and annotations, selectors, nodePort 0, unreadable/binary/empty files, hostAliases.
Every error names the file and line, the object and the field, and exits with status 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from netlab import names
from netlab.compile import compile_lab
from netlab.errors import InputError
from netlab.loader import build, read_files, read_text


def load(text: str):
    return build(read_text(text, "t.yaml"))


def refused(text: str) -> InputError:
    with pytest.raises(InputError) as e:
        load(text)
    assert e.value.exit_code == 2
    return e.value


def pod(name: str = "a", meta: str = "", spec: str = "") -> str:
    return (f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n{meta}"
            f"spec:\n  containers: [{{name: c}}]\n{spec}")


SUBDOMAIN = ("a DNS-1123 subdomain is at most 253 lower-case letters, digits, '-' and '.', "
             "starting and ending with a letter or digit")


# --- rule 1: object names by kind ----------------------------------------------------------


def test_dotted_names_load_where_kubernetes_takes_a_subdomain():
    m = load(pod("web.v1") + "---\n"
             "apiVersion: v1\nkind: Secret\nmetadata: {name: www.example.com}\n"
             "type: kubernetes.io/tls\nstringData: {tls.crt: x, tls.key: y}\n---\n"
             "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: conf.v2}\n---\n"
             "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: site.example}\n"
             "spec: {defaultBackend: {service: {name: web, port: {number: 80}}}}\n---\n"
             "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
             "metadata: {name: deny.all}\nspec: {podSelector: {}}\n")
    assert "default/web.v1" in m.pods
    assert ("Secret", "default", "www.example.com") in m.raw
    assert ("Ingress", "default", "site.example") in m.raw
    assert ("NetworkPolicy", "default", "deny.all") in m.raw


def test_pod_name_must_be_a_subdomain():
    e = refused("\n" + pod("web..v1"))
    assert str(e) == f"t.yaml:2: Pod: metadata.name: 'web..v1' is not a valid Pod name: {SUBDOMAIN}"
    e = refused(pod("a" * 254))
    assert (e.file, e.line, e.field) == ("t.yaml", 1, "metadata.name")
    load(pod("a" * 253))


def test_service_name_is_a_dns1035_label():
    svc = "apiVersion: v1\nkind: Service\nmetadata: {name: %s}\nspec: {ports: [{port: 80}]}\n"
    for bad in ("web.v1", "1web"):
        e = refused(svc % bad)
        assert str(e) == (f"t.yaml:1: Service: metadata.name: {bad!r} is not a valid Service "
                          "name: a DNS-1035 label is at most 63 lower-case letters, digits and "
                          "'-', starting with a letter and ending with a letter or digit")
    load(svc % "web-1")


def test_namespace_name_is_a_dns1123_label():
    e = refused("apiVersion: v1\nkind: Namespace\nmetadata: {name: team.a}\n")
    assert str(e).startswith("t.yaml:1: Namespace: metadata.name: 'team.a' is not a valid "
                             "Namespace name: a DNS-1123 label is at most 63")
    e = refused(pod("a", "  namespace: team.a\n"))
    assert str(e).startswith("t.yaml:1: Pod: metadata.namespace: 'team.a' is not a valid "
                             "namespace: a DNS-1123 label")


def test_container_name_is_a_dns1123_label():
    e = refused(pod("a").replace("{name: c}", "{name: c.v1}"))
    assert "t.yaml:1: Pod default/a: spec.containers[0].name: 'c.v1' is not a valid container " \
           "name: a DNS-1123 label" in str(e)


def test_deployment_name_may_hold_dots_and_its_pods_names_fit():
    m = load("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: " + "a" * 45 + ".v2}\n"
             "spec:\n  replicas: 1\n  selector: {matchLabels: {app: x}}\n"
             "  template:\n    metadata: {labels: {app: x}}\n"
             "    spec: {containers: [{name: c}]}\n")
    desired = compile_lab("t", read_text("apiVersion: apps/v1\nkind: Deployment\n"
                                         "metadata: {name: " + "a" * 45 + ".v2}\n"
                                         "spec:\n  selector: {matchLabels: {app: x}}\n"
                                         "  template:\n    metadata: {labels: {app: x}}\n"
                                         "    spec: {containers: [{name: c}]}\n"))
    assert m.deployments
    (p,) = [p for p in desired.plan.pods.values() if p.owner]
    assert names.is_dns1123_subdomain(p.name) and len(p.name) <= 63 and ".-" not in p.name


DOTTED = """\
apiVersion: v1
kind: Pod
metadata: {name: web.v1, labels: {app: web}}
spec: {containers: [{name: c, command: [sleep, "1000"]}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api.v2}
spec:
  replicas: 1
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec: {containers: [{name: c, command: [sleep, "1000"]}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: only.api}
spec:
  podSelector: {}
  ingress: [{from: [{podSelector: {matchLabels: {app: api}}}]}]
"""


def test_dotted_pod_and_deployment_names_render():
    desired = compile_lab("t", read_text(DOTTED, "t.yaml"))
    text = desired.text()
    web = desired.plan.pods["default/web.v1"]
    (api,) = [p for p in desired.plan.pods.values() if p.owner == "Deployment/api.v2"]
    assert api.name.startswith("api.v2-")
    assert web.netns == "netlab.t.pod.default.web.v1"
    assert names.lab_of_netns(web.netns) == "t"
    assert web.hostname == "web.v1"
    assert web.veth.startswith("veth") and len(web.veth) <= names.IFNAMSIZ
    assert "netns add pod.default.web.v1 " in text
    assert f"netns add pod.default.{api.name} " in text
    assert "file pods/default.web.v1/hosts:" in text
    # the policy's chains and comments are named after the pods, and nft would load them
    assert "add chain ip netlab-policy ingress-default/web.v1\n" in text
    assert f"add chain ip netlab-policy ingress-default/{api.name}\n" in text
    assert 'drop comment "default/web.v1: isolated for ingress, no rule allows"' in text
    for tables in desired.rules.values():
        for t in tables:
            t.validate()


def test_long_pod_names_still_make_valid_file_and_chain_names():
    name = ".".join(["a" * 63] * 3) + "." + "b" * 61  # 253 characters
    assert names.is_dns1123_subdomain(name)
    desired = compile_lab("t", read_text(DOTTED.replace("web.v1", name), "t.yaml"))
    p = desired.plan.pods[f"default/{name}"]
    assert len(p.netns) <= 255 and len(names.pod_dir("t", "default", name).name) <= 255
    assert p.netns != names.pod_netns("t", "default", name[:-1] + "c")
    assert len(p.hostname) <= 63 and not p.hostname.endswith((".", "-"))
    for tables in desired.rules.values():
        for t in tables:
            t.validate()


# --- rule 2: labels, annotations, selectors ------------------------------------------------


def test_label_value_of_80_characters_is_refused():
    e = refused(pod("a", "  labels: {tier: " + "x" * 80 + "}\n"))
    assert str(e) == ("t.yaml:1: Pod default/a: metadata.labels.tier: label value '" + "x" * 80
                      + "' is not valid: it is 80 characters long; a label value is at most 63")


def test_label_values_may_be_empty_and_keys_may_have_a_prefix():
    m = load(pod("a", "  labels: {app.kubernetes.io/name: Web_1.x, empty: ''}\n"))
    assert m.pods["default/a"].labels == {"app.kubernetes.io/name": "Web_1.x", "empty": ""}


@pytest.mark.parametrize(("key", "why"), [
    ("Bad.Prefix/x", "the prefix 'Bad.Prefix' must be a DNS-1123 subdomain"),
    ("a/b/c", "a qualified name has at most one '/'"),
    ("/x", "the prefix before '/' must not be empty"),
    ("x/", "the name part must not be empty"),
    ("-x", "the name part must be at most 63 letters, digits, '-', '_' and '.'"),
    ("k" * 64, "the name part must be at most 63"),
])
def test_label_keys_are_qualified_names(key, why):
    e = refused(pod("a", f"  labels: {{'{key}': v}}\n"))
    assert str(e).startswith(f"t.yaml:1: Pod default/a: metadata.labels.{key}: label key "
                             f"{key!r} is not valid: {why}")


def test_label_value_charset():
    e = refused(pod("a", "  labels: {app: 'a b'}\n"))
    assert str(e) == ("t.yaml:1: Pod default/a: metadata.labels.app: label value 'a b' is not "
                      "valid: a label value holds letters, digits, '-', '_' and '.', starting "
                      "and ending with a letter or digit")


def test_annotation_keys_are_checked_and_values_are_free():
    m = load(pod("a", "  annotations: {Example.COM/note: '" + "any text! " * 20 + "'}\n"))
    assert m.pods["default/a"].annotations["Example.COM/note"].startswith("any text!")
    e = refused(pod("a", "  annotations: {'bad key': x}\n"))
    assert str(e).startswith("t.yaml:1: Pod default/a: metadata.annotations.bad key: annotation "
                             "key 'bad key' is not valid: the name part must be")
    e = refused(pod("a", "  annotations: {big: '" + "x" * (256 * 1024) + "'}\n"))
    assert "metadata.annotations: may not be more than 262144 bytes in all" in str(e)


def test_selectors_are_checked_like_labels():
    deploy = ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n"
              "  selector: %s\n  template:\n    metadata: {labels: {app: x}}\n"
              "    spec: {containers: [{name: c}]}\n")
    e = refused(deploy % "{matchLabels: {app: 'x y'}}")
    assert str(e).startswith("t.yaml:1: Deployment default/d: spec.selector.matchLabels.app: "
                             "label value 'x y' is not valid")
    e = refused(deploy % "{matchExpressions: [{key: 'a b', operator: Exists}]}")
    assert str(e).startswith("t.yaml:1: Deployment default/d: spec.selector."
                             "matchExpressions[0].key: label key 'a b' is not valid")
    e = refused(deploy % ("{matchExpressions: [{key: app, operator: In, values: [x, '"
                          + "v" * 64 + "']}]}"))
    assert str(e).startswith("t.yaml:1: Deployment default/d: spec.selector."
                             "matchExpressions[0].values[1]: label value")
    e = refused("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n"
                "spec: {selector: {'app/x/y': web}, ports: [{port: 80}]}\n")
    assert str(e).startswith("t.yaml:1: Service default/s: spec.selector.app/x/y: label key "
                             "'app/x/y' is not valid: a qualified name has at most one '/'")
    e = refused(deploy.replace("{labels: {app: x}}", "{labels: {app: '-x'}}")
                % "{matchLabels: {app: x}}")
    assert "spec.template.metadata.labels.app: label value '-x' is not valid" in str(e)


# --- rule 3: nodePort 0 ----------------------------------------------------------------------


def test_node_port_zero_means_unset():
    svc = ("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n"
           "spec: {type: %s, ports: [{port: 80, nodePort: 0}]}\n")
    for stype in ("ClusterIP", "NodePort"):
        m = load(svc % stype)
        assert m.services["default/s"].ports[0].node_port is None
        assert not any("nodePort" in w for w in m.warnings)
    e = refused(svc.replace("nodePort: 0", "nodePort: 80") % "NodePort")
    assert str(e) == ("t.yaml:1: Service default/s: spec.ports[0].nodePort: 80 is out of range "
                      "30000-32767")


# --- rule 4: unreadable, binary and empty files ---------------------------------------------


def refused_file(path: Path) -> InputError:
    with pytest.raises(InputError) as e:
        read_files([path])
    assert e.value.exit_code == 2 and e.value.file == str(path)
    return e.value


def test_binary_file_is_refused(tmp_path):
    f = tmp_path / "b.yaml"
    f.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    assert str(refused_file(f)) == (f"{f} is not a text file: byte 0 is not UTF-8 (manifests "
                                    "are YAML or JSON in UTF-8)")
    f.write_bytes(b"kind: Pod\n\x00\x00")
    assert str(refused_file(f)) == f"{f} is not a text file: it holds a NUL byte at 10"


def test_empty_file_is_refused(tmp_path):
    f = tmp_path / "e.yaml"
    f.write_text("")
    assert str(refused_file(f)) == f"{f} holds no Kubernetes objects (it is empty)"
    f.write_text("# only a comment\n---\n---\n")
    assert str(refused_file(f)) == f"{f} holds no Kubernetes objects"


def test_empty_documents_between_separators_are_fine(tmp_path):
    f = tmp_path / "ok.yaml"
    f.write_text("---\n---\n" + pod("a") + "---\n\n---\n" + pod("b"))
    assert [d.doc["metadata"]["name"] for d in read_files([f])] == ["a", "b"]


def test_unreadable_file_is_refused(tmp_path, monkeypatch):
    f = tmp_path / "u.yaml"
    f.write_text(pod("a"))

    def denied(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", denied)
    assert str(refused_file(f)) == f"cannot read {f}: Permission denied"


# --- rule 5: hostAliases ---------------------------------------------------------------------


def test_host_aliases_are_written_to_etc_hosts():
    text = pod("a", spec="  hostAliases:\n  - {ip: 127.0.0.1, hostnames: [foo.local, bar.local]}\n"
                         "  - {ip: '10.1.2.3', hostnames: [foo.remote]}\n")
    desired = compile_lab("t", read_text(text, "t.yaml"))
    hosts = desired.files["pods/default.a/hosts"].data.decode()
    p = desired.plan.pods["default/a"]
    assert hosts.endswith(f"{p.ip}\ta\n\n# Entries added by HostAliases.\n"
                          "127.0.0.1\tfoo.local\tbar.local\n10.1.2.3\tfoo.remote\n")
    assert not any("hostAliases" in w for w in desired.warnings)


def test_host_aliases_are_validated():
    e = refused(pod("a", spec="  hostAliases: [{ip: 10.1.2, hostnames: [x]}]\n"))
    assert str(e) == ("t.yaml:1: Pod default/a: spec.hostAliases[0].ip: '10.1.2' is not a valid "
                      "IP address")
    e = refused(pod("a", spec="  hostAliases: [{ip: 10.1.2.3, hostnames: [ok, Not_OK]}]\n"))
    assert str(e) == ("t.yaml:1: Pod default/a: spec.hostAliases[0].hostnames[1]: 'Not_OK' is "
                      f"not a valid hostname: {SUBDOMAIN}")
