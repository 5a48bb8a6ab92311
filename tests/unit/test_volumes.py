"""ConfigMaps, volumes, volumeMounts and env from ConfigMaps/Secrets/the downward API: the
loader's validation (API server rules, exit 2) and the pure rendering of netlab.features.volumes."""

from __future__ import annotations

import base64

import pytest

from netlab.errors import InputError
from netlab.features.volumes import (
    PodVolume,
    container_env,
    container_mounts,
    pod_fields,
    pod_volumes,
)
from netlab.loader import build, quantity_bytes, read_text
from netlab.model import EnvRef, VolumeMount


def load(text: str):
    return build(read_text(text, "t.yaml"))


CM = """
apiVersion: v1
kind: ConfigMap
metadata: {name: app-config}
data:
  app.properties: "color=blue\\n"
  mode: fast
binaryData:
  blob.bin: BLOB
immutable: true
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {password: hunter2, user: admin}
""".replace("BLOB", base64.b64encode(b"\x00\x01\x02").decode())


def pod(spec_tail: str, container_tail: str = "", extra: str = CM) -> str:
    return extra + f"""
---
apiVersion: v1
kind: Pod
metadata: {{name: p, labels: {{app: web, tier: front}}}}
spec:
  containers:
  - name: c
    command: [sleep, "3600"]
{container_tail}
{spec_tail}
"""


def test_configmap_is_loaded():
    m = load(CM)
    cm = m.config_maps["default/app-config"]
    assert cm.data == {"app.properties": "color=blue\n", "mode": "fast"}
    assert cm.binary_data == {"blob.bin": b"\x00\x01\x02"}
    assert cm.immutable
    assert not any("ConfigMap" in w for w in m.warnings)
    assert ("ConfigMap", "default", "app-config") in m.raw


@pytest.mark.parametrize("doc, field, message", [
    ("data: {'a/b': x}", "data.a/b", "not a valid config key"),
    ("data: {a: x}\nbinaryData: {a: eA==}", "binaryData.a", "duplicate of key"),
    ("binaryData: {a: '!!'}", "binaryData.a", "not valid base64"),
    ("immutable: maybe", "immutable", "true or false"),
])
def test_configmap_errors(doc, field, message):
    with pytest.raises(InputError) as e:
        load(f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\n{doc}\n")
    assert e.value.exit_code == 2
    assert e.value.field == field
    assert message in str(e.value)


VOLUMES = """
  volumes:
  - name: scratch
    emptyDir: {}
  - name: cache
    emptyDir: {medium: Memory, sizeLimit: 64Mi}
  - name: cfg
    configMap:
      name: app-config
      defaultMode: 0440
      items: [{key: mode, path: conf/mode.txt, mode: 0400}, {key: app.properties, path: a.p}]
  - name: sec
    secret: {secretName: creds}
  - name: info
    downwardAPI:
      items:
      - {path: labels, fieldRef: {fieldPath: metadata.labels}}
      - {path: name, fieldRef: {fieldPath: metadata.name}}
      - {path: ip, fieldRef: {fieldPath: status.podIP}}
  - name: all
    projected:
      sources:
      - configMap: {name: app-config, items: [{key: mode, path: mode}]}
      - secret: {name: creds}
      - serviceAccountToken: {path: token}
"""
MOUNTS = """    volumeMounts:
    - {name: scratch, mountPath: /data}
    - {name: cache, mountPath: /cache/}
    - {name: cfg, mountPath: /etc/app, readOnly: false}
    - {name: sec, mountPath: /etc/creds/password, subPath: password}
"""


def test_volumes_and_mounts_are_parsed():
    m = load(pod(VOLUMES, MOUNTS))
    p = m.pods["default/p"]
    vols = {v.name: v for v in p.spec.volumes}
    assert list(vols) == ["scratch", "cache", "cfg", "sec", "info", "all"]
    assert vols["cache"].medium == "Memory" and vols["cache"].size_limit == 64 << 20
    assert vols["cfg"].default_mode == 0o440 and vols["cfg"].items[0].mode == 0o400
    assert vols["all"].kind == "projected" and len(vols["all"].sources) == 2
    c = p.spec.containers[0]
    assert c.volume_mounts[1] == VolumeMount("cache", "/cache")
    assert c.volume_mounts[3].sub_path == "password"
    assert any("serviceAccountToken" in w for w in m.warnings)
    # configMap/secret/... are read-only whatever readOnly says (Kubernetes >= 1.9.4)
    mounts = {vm.name: vm for vm in container_mounts(p.spec, c)}
    assert mounts["cfg"].read_only and mounts["sec"].read_only
    assert not mounts["scratch"].read_only


@pytest.mark.parametrize("spec_tail, container_tail, field, message", [
    ("  volumes: [{name: a, emptyDir: {}}, {name: a, emptyDir: {}}]", "",
     "spec.volumes[1].name", "Duplicate value"),
    ("  volumes: [{name: A, emptyDir: {}}]", "", "spec.volumes[0].name", "DNS-1123"),
    ("  volumes: [{name: a}]", "", "spec.volumes[0]", "must specify a volume type"),
    ("  volumes: [{name: a, emptyDir: {}, secret: {secretName: s}}]", "",
     "spec.volumes[0].secret", "more than 1 volume type"),
    ("  volumes: [{name: a, emptyDir: {medium: Disk}}]", "",
     "spec.volumes[0].emptyDir.medium", "not one of"),
    ("  volumes: [{name: a, emptyDir: {sizeLimit: lots}}]", "",
     "spec.volumes[0].emptyDir.sizeLimit", "not a quantity"),
    ("  volumes: [{name: a, configMap: {name: c, items: [{key: k, path: ../x}]}}]", "",
     "spec.volumes[0].configMap.items[0].path", "relative path"),
    ("  volumes: [{name: a, configMap: {name: c, defaultMode: 01000}}]", "",
     "spec.volumes[0].configMap.defaultMode", "out of range"),
    ("  volumes: [{name: a, hostPath: {path: var/log}}]", "",
     "spec.volumes[0].hostPath.path", "absolute"),
    ("  volumes: [{name: a, emptyDir: {}}]", "    volumeMounts: [{name: b, mountPath: /x}]",
     "spec.containers[0].volumeMounts[0].name", "Not found"),
    ("  volumes: [{name: a, emptyDir: {}}]", "    volumeMounts: [{name: a, mountPath: x}]",
     "spec.containers[0].volumeMounts[0].mountPath", "absolute"),
    ("  volumes: [{name: a, emptyDir: {}}]",
     "    volumeMounts: [{name: a, mountPath: /x}, {name: a, mountPath: /x/}]",
     "spec.containers[0].volumeMounts[1].mountPath", "unique"),
    ("  volumes: [{name: a, emptyDir: {}}]",
     "    volumeMounts: [{name: a, mountPath: /x, subPath: ../../etc}]",
     "spec.containers[0].volumeMounts[0].subPath", "relative path"),
    ("", "    env: [{name: X, value: a, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]",
     "spec.containers[0].env[0].valueFrom", "may not be specified"),
    ("", "    env: [{name: X, valueFrom: {fieldRef: {fieldPath: spec.foo}}}]",
     "spec.containers[0].env[0].valueFrom.fieldRef.fieldPath", "not supported"),
    ("", "    envFrom: [{configMapRef: {name: a}, secretRef: {name: b}}]",
     "spec.containers[0].envFrom[0]", "exactly one"),
])
def test_volume_and_env_errors(spec_tail, container_tail, field, message):
    with pytest.raises(InputError) as e:
        load(pod(spec_tail, container_tail, extra=""))
    assert e.value.exit_code == 2
    assert e.value.field == field, str(e.value)
    assert message in str(e.value)


def test_hostpath_and_unmodelled_volumes_warn():
    m = load(pod("  volumes: [{name: h, hostPath: {path: /var/log}}, "
                 "{name: d, persistentVolumeClaim: {claimName: x}}]", extra=""))
    assert any("spec.volumes[0].hostPath /var/log is mounted read-only" in w
               for w in m.warnings)
    assert any("persistentVolumeClaim is not modelled" in w for w in m.warnings)
    vols, _ = pod_volumes(m.pods["default/p"], m)
    assert vols == [PodVolume("h", "host", host_path="/var/log"), PodVolume("d", "dir")]


def test_volumes_render():
    m = load(pod(VOLUMES, MOUNTS))
    p = m.pods["default/p"]
    vols, warnings = pod_volumes(p, m, pod_fields(p, pod_ips=("10.244.1.5",)))
    by = {v.name: v for v in vols}
    assert by["scratch"] == PodVolume("scratch", "dir")
    assert by["cache"] == PodVolume("cache", "memory", 64 << 20)
    assert by["cfg"].files == {"conf/mode.txt": (b"fast", 0o400),
                               "a.p": (b"color=blue\n", 0o440)}
    assert by["sec"].files == {"password": (b"hunter2", 0o644), "user": (b"admin", 0o644)}
    assert by["info"].files == {"labels": (b'app="web"\ntier="front"\n', 0o644),
                                "name": (b"p", 0o644), "ip": (b"10.244.1.5", 0o644)}
    assert by["all"].files == {"mode": (b"fast", 0o644), "password": (b"hunter2", 0o644),
                               "user": (b"admin", 0o644)}
    assert warnings == []


def test_missing_objects_and_keys_warn_unless_optional():
    spec = """  volumes:
  - {name: a, configMap: {name: nope}}
  - {name: b, configMap: {name: nope, optional: true}}
  - {name: c, secret: {secretName: creds, items: [{key: token, path: t}]}}
"""
    m = load(pod(spec))
    vols, warnings = pod_volumes(m.pods["default/p"], m)
    assert all(v.files == {} for v in vols)
    assert len(warnings) == 2
    assert "pod default/p: volume a: ConfigMap default/nope not found" in warnings[0]
    assert "has no key 'token'" in warnings[1]


ENV = """    env:
    - {name: PLAIN, value: one}
    - name: COLOR
      valueFrom: {configMapKeyRef: {name: app-config, key: mode}}
    - name: PASS
      valueFrom: {secretKeyRef: {name: creds, key: password}}
    - name: MISSING
      valueFrom: {configMapKeyRef: {name: app-config, key: nokey}}
    - name: OPTIONAL
      valueFrom: {secretKeyRef: {name: nosecret, key: k, optional: true}}
    - name: POD_NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    - name: POD_IP
      valueFrom: {fieldRef: {fieldPath: status.podIP}}
    - name: CPU
      valueFrom: {resourceFieldRef: {resource: limits.cpu}}
    envFrom:
    - configMapRef: {name: app-config}
      prefix: CFG_
    - secretRef: {name: creds}
"""


def test_env_from_configmaps_secrets_and_fields():
    m = load(pod("", ENV))
    p = m.pods["default/p"]
    c = p.spec.containers[0]
    assert c.env == (("PLAIN", "one"),)
    assert EnvRef("COLOR", "configMap", "app-config", "mode") in c.env_refs
    assert EnvRef("", "secret", "creds") in c.env_refs
    # the warning names the field that is not modelled: valueFrom, not env[i].name
    assert any("spec.containers[0].env[7].valueFrom.resourceFieldRef is not modelled" in w
               for w in m.warnings)
    env, warnings = container_env(p, c, m, pod_fields(p, pod_ips=("10.244.1.5",)))
    assert dict(env) == {
        "CFG_mode": "fast", "password": "hunter2", "user": "admin", "PLAIN": "one",
        "COLOR": "fast", "PASS": "hunter2", "POD_NAME": "p", "POD_IP": "10.244.1.5",
        # the kubelet allows dots in names from envFrom; binaryData keys count too
        "CFG_app.properties": "color=blue\n", "CFG_blob.bin": "\x00\x01\x02"}
    assert len(warnings) == 1
    assert "pod default/p: container c: env MISSING: key 'nokey'" in warnings[0]


def test_env_missing_object_warns_and_unknown_field_warns():
    m = load(pod("", """    env:
    - name: X
      valueFrom: {secretKeyRef: {name: gone, key: k}}
    - name: IP
      valueFrom: {fieldRef: {fieldPath: status.podIP}}
    envFrom: [{configMapRef: {name: gone}}, {configMapRef: {name: gone2, optional: true}}]
""", extra=""))
    p = m.pods["default/p"]
    env, warnings = container_env(p, p.spec.containers[0], m)
    assert env == []
    assert len(warnings) == 3
    assert "Secret default/gone not found" in warnings[1]
    assert "status.podIP is not known" in warnings[2]


@pytest.mark.parametrize("text, want", [("64Mi", 64 << 20), ("1G", 10**9), ("500", 500),
                                        ("1.5Ki", 1536), ("100m", 1), ("x", None)])
def test_quantity(text, want):
    assert quantity_bytes(text) == want
