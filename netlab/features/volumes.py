"""Volumes and environment from ConfigMaps, Secrets and the downward API, as the kubelet
makes them at pod start: pure (model in, contents out); `netlab.kernel.sandbox` mounts them.

A pod's volumes become `PodVolume`s: an emptyDir a directory of the pod (`dir`) or, with
medium Memory, a tmpfs (`memory`, sizeLimit its size); configMap, secret, downwardAPI and
projected volumes the files they project (`files`, always mounted read-only as in Kubernetes
since 1.9.4); a hostPath the host path (`host`, read-only: see the loader). Where the
kubelet would keep the pod from starting (a missing ConfigMap, Secret or key that is not
optional), the pod starts and a warning names the pod and what is missing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Literal

from netlab.model import Container, KeyToPath, Manifests, Pod, PodSpec, Volume, VolumeMount

READ_ONLY_KINDS = ("configMap", "secret", "downwardAPI", "projected", "hostPath")
# C_IDENTIFIER-ish names the kubelet accepts from envFrom (others are skipped with an event)
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


@dataclass(frozen=True)
class PodVolume:
    """A volume ready for the sandbox (`netlab.kernel.sandbox.VolumeLike`)."""

    name: str
    kind: Literal["dir", "memory", "files", "host"]
    size_bytes: int | None = None
    files: dict[str, tuple[bytes, int]] = field(default_factory=dict, hash=False)
    host_path: str | None = None


def pod_fields(pod: Pod, pod_ips: tuple[str, ...] = (), node: str | None = None,
               host_ips: tuple[str, ...] = (), uid: str | None = None) -> dict[str, str]:
    """The downward API's values for `pod` (fieldPath -> value); unknown ones left out.
    `pod_ips`/`host_ips`: one address per family, the primary first; status.podIP is the
    first, status.podIPs all, comma-separated, as the kubelet writes them."""
    out = {"metadata.name": pod.name, "metadata.namespace": pod.namespace,
           "spec.serviceAccountName": "default",
           "metadata.labels": _kv_lines(pod.labels),
           "metadata.annotations": _kv_lines(pod.annotations)}
    for k, v in pod.labels.items():
        out[f"metadata.labels['{k}']"] = v
    for k, v in pod.annotations.items():
        out[f"metadata.annotations['{k}']"] = v
    for key, value in (("status.podIP", pod_ips[0] if pod_ips else None),
                       ("status.podIPs", ",".join(pod_ips)),
                       ("spec.nodeName", node or pod.spec.node_name),
                       ("status.hostIP", host_ips[0] if host_ips else None),
                       ("status.hostIPs", ",".join(host_ips)), ("metadata.uid", uid)):
        if value:
            out[key] = value
    return out


def _kv_lines(d: dict[str, str]) -> str:
    """The downward API's file format for labels and annotations: key="value" per line."""
    return "".join(f'{k}="{v}"\n' for k, v in sorted(d.items()))


def _data(m: Manifests, kind: str, namespace: str, name: str) -> dict[str, bytes] | None:
    if kind == "configMap":
        cm = m.config_maps.get(f"{namespace}/{name}")
        if cm is None:
            return None
        return {**{k: v.encode() for k, v in cm.data.items()}, **cm.binary_data}
    s = m.secrets.get(f"{namespace}/{name}")
    return None if s is None else dict(s.data)


def _kind_name(kind: str) -> str:
    return "ConfigMap" if kind == "configMap" else "Secret"


def _project(v: Volume, pod: Pod, m: Manifests, fields: dict[str, str], default_mode: int,
             warn: list[str]) -> dict[str, tuple[bytes, int]]:
    what = f"pod {pod.key}: volume {v.name}"
    files: dict[str, tuple[bytes, int]] = {}
    if v.kind == "downwardAPI":
        for path, field_path, mode in v.fields:
            if field_path not in fields:
                warn.append(f"{what}: {field_path} is not known to netlab; {path} not written")
                continue
            files[path] = (fields[field_path].encode(), mode if mode is not None
                           else default_mode)
        return files
    assert v.ref is not None
    data = _data(m, v.kind, pod.namespace, v.ref)
    if data is None:
        if not v.optional:
            warn.append(f"{what}: {_kind_name(v.kind)} {pod.namespace}/{v.ref} not found (the "
                        "kubelet would not start the pod); the volume is empty")
        return files
    items = v.items or tuple(KeyToPath(k, k) for k in sorted(data))
    for it in items:
        if it.key not in data:
            if not v.optional:
                warn.append(f"{what}: {_kind_name(v.kind)} {pod.namespace}/{v.ref} has no key "
                            f"{it.key!r} (the kubelet would not start the pod); not written")
            continue
        files[it.path] = (data[it.key], it.mode if it.mode is not None else default_mode)
    return files


def pod_volumes(pod: Pod, m: Manifests, fields: dict[str, str] | None = None
                ) -> tuple[list[PodVolume], list[str]]:
    """The pod's volumes with their contents, and warnings naming the pod."""
    fields = pod_fields(pod) if fields is None else fields
    out: list[PodVolume] = []
    warn: list[str] = []
    for v in pod.spec.volumes:
        if v.kind == "emptyDir" and v.medium == "Memory":
            out.append(PodVolume(v.name, "memory", v.size_limit))
        elif v.kind in ("emptyDir", "other"):
            out.append(PodVolume(v.name, "dir"))
        elif v.kind == "hostPath":
            out.append(PodVolume(v.name, "host", host_path=v.ref))
        elif v.kind == "projected":
            files: dict[str, tuple[bytes, int]] = {}
            for s in v.sources:
                files.update(_project(replace(s, name=v.name), pod, m, fields, s.default_mode,
                                      warn))
            out.append(PodVolume(v.name, "files", files=files))
        else:
            out.append(PodVolume(v.name, "files",
                                 files=_project(v, pod, m, fields, v.default_mode, warn)))
    return out, warn


def container_mounts(spec: PodSpec, container: Container) -> tuple[VolumeMount, ...]:
    """The container's volumeMounts as mounted: configMap, secret, downwardAPI, projected
    and hostPath volumes read-only whatever readOnly says."""
    kinds = {v.name: v.kind for v in spec.volumes}
    return tuple(replace(vm, read_only=True) if kinds.get(vm.name) in READ_ONLY_KINDS else vm
                 for vm in container.volume_mounts)


def container_env(pod: Pod, container: Container, m: Manifests,
                  fields: dict[str, str] | None = None
                  ) -> tuple[list[tuple[str, str]], list[str]]:
    """The container's environment: envFrom first, then env (a later name wins, as in the
    kubelet; valueFrom entries after the plain values), and warnings naming the pod, the
    container and what is missing."""
    fields = pod_fields(pod) if fields is None else fields
    what = f"pod {pod.key}: container {container.name}"
    env: dict[str, str] = {}
    warn: list[str] = []
    for r in container.env_refs:
        if r.name:
            continue
        data = _data(m, r.kind, pod.namespace, r.source)
        if data is None:
            if not r.optional:
                warn.append(f"{what}: envFrom {_kind_name(r.kind)} {pod.namespace}/{r.source} "
                            "not found (the kubelet would not start the container)")
            continue
        for k, v in sorted(data.items()):
            if _ENV_NAME.match(r.prefix + k):
                env[r.prefix + k] = v.decode(errors="replace")
            else:
                warn.append(f"{what}: envFrom {_kind_name(r.kind)} {r.source}: key {k!r} is "
                            "not a valid variable name; skipped")
    env.update(container.env)
    for r in container.env_refs:
        if not r.name:
            continue
        if r.kind == "field":
            if r.source in fields:
                env[r.name] = fields[r.source]
            else:
                warn.append(f"{what}: env {r.name}: {r.source} is not known to netlab; "
                            "variable not set")
            continue
        data = _data(m, r.kind, pod.namespace, r.source)
        if data is not None and r.key in data:
            env[r.name] = data[r.key].decode(errors="replace")
        elif not r.optional:
            missing = (f"{_kind_name(r.kind)} {pod.namespace}/{r.source} not found"
                       if data is None else
                       f"key {r.key!r} not in {_kind_name(r.kind)} {pod.namespace}/{r.source}")
            warn.append(f"{what}: env {r.name}: {missing} (the kubelet would not start the "
                        "container); variable not set")
    return list(env.items()), warn
