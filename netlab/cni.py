"""The CNI runtime's pure half: network configuration lists, each plugin's stdin, results,
errors, the result cache and CNI_ARGS, as the CNI specification v1.0.0 and libcni
(github.com/containernetworking/cni, libcni/api.go and conf.go) define them.

No process runs here: netlab.kernel.cni executes plugins with what this module builds.
JSON handed to plugins or cached is written as Go's encoding/json writes it (sorted map
keys, no spaces, <>& escaped), so a plugin sees byte for byte what libcni would give it.
"""

from __future__ import annotations

import base64
import copy
import ipaddress
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from netlab.errors import InputError, KernelError

VERSIONS = ("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0")
CURRENT_VERSION = "1.0.0"  # the newest spec this runtime implements (VERSION's stdin)
CACHE_KIND = "cniCacheV1"

# Spec v1.0.0, "Error": codes 0-99 are well-known, 100+ are the plugin's own.
ERROR_CODES = {
    1: "incompatible CNI version",
    2: "unsupported field in network configuration",
    3: "container unknown or does not exist",
    4: "invalid necessary environment variables",
    5: "I/O failure",
    6: "failed to decode content",
    7: "invalid network config",
    11: "try again later",
}

# libcni pkg/utils: container IDs and network names.
_CNI_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.\-]*")
IFNAME_MAX = 15


# --- JSON as Go writes it ---------------------------------------------------------------

def go_json(value: Any) -> bytes:
    """`value` as Go's json.Marshal writes a map[string]interface{}: keys sorted, compact,
    and '<', '>', '&', U+2028, U+2029 escaped (encoding/json's HTML-safe default). These
    characters only occur inside JSON strings, so replacing them in the text is exact."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                    ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    return text.encode()


def _version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split(".")) if v else (0, 1, 0)  # "" means 0.1.0 (spec)


def version_at_least(version: str, minimum: str) -> bool:
    return _version_tuple(version) >= _version_tuple(minimum)


# --- configuration ------------------------------------------------------------------------

@dataclass(frozen=True)
class PluginConf:
    """One entry of `plugins`: its type (the executable's name), its JSON object as given,
    and the capabilities it declares true (only those reach its runtimeConfig)."""

    type: str
    raw: dict = field(hash=False)
    capabilities: frozenset[str] = frozenset()


@dataclass(frozen=True)
class NetworkConfigList:
    """A network configuration list (a .conflist). `raw` is the list's bytes as libcni
    keeps them (NetworkConfigList.Bytes): the text given, or for a single network config,
    libcni's wrapping of it; the result cache stores these bytes."""

    name: str
    cni_version: str
    plugins: tuple[PluginConf, ...]
    disable_check: bool = False
    raw: bytes = field(default=b"", compare=False, repr=False)

    def as_dict(self) -> dict:
        return json.loads(self.raw)


def _kind(v: Any) -> str:
    return {dict: "a map", list: "a list", str: "a string", bool: "true/false",
            type(None): "null"}.get(type(v), "a number")


def is_cni_name(name: str) -> bool:
    """A valid network name or container ID (libcni ValidateNetworkName/ContainerID)."""
    return _CNI_NAME.fullmatch(name) is not None


def ifname_problem(ifname: str) -> str | None:
    """Why `ifname` cannot be CNI_IFNAME (libcni ValidateInterfaceName), or None."""
    if not ifname:
        return "is empty"
    if len(ifname.encode()) > IFNAME_MAX:
        return f"is longer than {IFNAME_MAX} characters"
    if ifname in (".", ".."):
        return "cannot be . or .."
    if any(c in "/:" or c.isspace() for c in ifname):
        return "contains '/', ':' or whitespace"
    return None


def _read_bool(data: dict, key: str, where: str, file: str | None) -> bool:
    """libcni's readBool: true/false, or the strings "true"/"false" in any case."""
    v = data.get(key, False)
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    raise InputError(f"must be true or false, not {json.dumps(v)}", file=file,
                     field=f"{where}.{key}")


def _plugin(data: Any, where: str, file: str | None) -> PluginConf:
    if not isinstance(data, dict):
        raise InputError(f"must be a map with a type, not {_kind(data)}", file=file, field=where)
    t = data.get("type")
    if t is None or t == "":
        raise InputError("missing", file=file, field=f"{where}.type")
    if not isinstance(t, str):
        raise InputError(f"must be a string, not {_kind(t)}", file=file, field=f"{where}.type")
    if "/" in t or t in (".", "..") or "\0" in t:
        raise InputError(f"{t!r} must be the plain file name of a plugin (looked up in the "
                         "CNI bin directories), not a path", file=file, field=f"{where}.type")
    caps = data.get("capabilities", {})
    if not isinstance(caps, dict) or not all(isinstance(v, bool) for v in caps.values()):
        raise InputError('must map capability names to true or false, e.g. '
                         '{"portMappings": true}', file=file, field=f"{where}.capabilities")
    return PluginConf(t, copy.deepcopy(data), frozenset(k for k, v in caps.items() if v))


def parse_conflist(data: bytes | str | Mapping, *, where: str = "cni.config",
                   file: str | None = None) -> NetworkConfigList:
    """A network configuration list from its JSON (bytes, text or a parsed mapping).
    A single network config (no "plugins" key) becomes a list of one, as libcni's
    ConfListFromConf makes it. Raises InputError naming the field (`where` prefixes it)."""
    if isinstance(data, Mapping):
        obj: Any = copy.deepcopy(dict(data))
        raw = go_json(obj)
    else:
        raw = data.encode() if isinstance(data, str) else bytes(data)
        try:
            obj = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise InputError(f"is not valid JSON: {e}", file=file, field=where) from e
    if not isinstance(obj, dict):
        raise InputError(f"must be a map (a network configuration list), not {_kind(obj)}",
                         file=file, field=where)

    name = obj.get("name")
    if name is None or name == "":
        raise InputError("missing", file=file, field=f"{where}.name")
    if not isinstance(name, str):
        raise InputError(f"must be a string, not {_kind(name)}", file=file,
                         field=f"{where}.name")
    if not is_cni_name(name):
        raise InputError(f"{name!r} is not a valid CNI network name: letters, digits, '_', "
                         "'.' and '-', starting with a letter or digit", file=file,
                         field=f"{where}.name")
    version = obj.get("cniVersion")
    if version is None or version == "":
        raise InputError(f"missing (one of {', '.join(VERSIONS)})", file=file,
                         field=f"{where}.cniVersion")
    if version not in VERSIONS:
        raise InputError(f"{json.dumps(version)} is not a CNI version this runtime knows: "
                         f"{', '.join(VERSIONS)}", file=file, field=f"{where}.cniVersion")
    disable_check = _read_bool(obj, "disableCheck", where, file)

    if "plugins" not in obj:
        # libcni ConfListFromConf: the whole config, name and cniVersion included, becomes
        # the only plugin of a list re-marshalled from {name, cniVersion, plugins}.
        plugin = _plugin(obj, where, file)
        wrapped = {"name": name, "cniVersion": version, "plugins": [obj]}
        return NetworkConfigList(name, version, (plugin,), False, go_json(wrapped))

    plugins = obj["plugins"]
    if not isinstance(plugins, list):
        raise InputError(f"must be a list of plugin configs, not {_kind(plugins)}", file=file,
                         field=f"{where}.plugins")
    if not plugins:
        raise InputError("is empty: a network needs at least one plugin", file=file,
                         field=f"{where}.plugins")
    confs = tuple(_plugin(p, f"{where}.plugins[{i}]", file) for i, p in enumerate(plugins))
    return NetworkConfigList(name, version, confs, disable_check, raw)


def plugin_stdin(conflist: NetworkConfigList, plugin: PluginConf, prev_result: dict | None,
                 runtime_config: Mapping[str, Any]) -> bytes:
    """The execution configuration one plugin reads on stdin (libcni buildOneConfig and
    injectRuntimeConfig): the plugin's object with the list's `name` and `cniVersion`,
    `prevResult` when given, and `runtimeConfig` holding only the capability arguments the
    plugin declares true (left as configured when there are none).

    The spec says the runtime removes `capabilities`; libcni does not, and plugins ignore
    it, so it stays: the plugin gets what it would get under containerd or CRI-O."""
    conf = copy.deepcopy(plugin.raw)
    conf["name"] = conflist.name
    conf["cniVersion"] = conflist.cni_version
    if prev_result is not None:
        conf["prevResult"] = prev_result
    rc = {k: runtime_config[k] for k in sorted(plugin.capabilities) if k in runtime_config}
    if rc:
        conf["runtimeConfig"] = rc
    return go_json(conf)


# --- host-local's state inside the lab ----------------------------------------------------

def with_data_dir(plugin_raw: Mapping, data_dir: str) -> tuple[dict, str | None]:
    """The plugin's config with ipam.dataDir = `data_dir` when its IPAM is host-local
    (whose default, /var/lib/cni/networks, is the host's). Returns (config, replaced): a
    dataDir the user gave that is not under `data_dir` is replaced, and returned as
    `replaced` so the caller can warn; otherwise `replaced` is None."""
    conf = copy.deepcopy(dict(plugin_raw))
    ipam = conf.get("ipam")
    if not isinstance(ipam, dict) or ipam.get("type") != "host-local":
        return conf, None
    given = ipam.get("dataDir")
    if isinstance(given, str) and given and _is_under(given, data_dir):
        return conf, None
    ipam["dataDir"] = data_dir
    return conf, str(given) if given else None


def _is_under(path: str, root: str) -> bool:
    p, r = PurePosixPath(path), PurePosixPath(root)
    return p.is_absolute() and ".." not in p.parts and (p == r or r in p.parents)


def conflist_with_data_dir(conflist: NetworkConfigList, data_dir: str
                           ) -> tuple[NetworkConfigList, list[str]]:
    """with_data_dir applied to every plugin: the new list (its raw bytes re-marshalled)
    and the dataDirs replaced."""
    obj = conflist.as_dict()
    replaced: list[str] = []
    plugins = []
    for p in conflist.plugins:
        conf, old = with_data_dir(p.raw, data_dir)
        plugins.append(conf)
        if old:
            replaced.append(old)
    if "plugins" in obj:
        obj["plugins"] = plugins
    else:  # a single config was wrapped: keep the wrapping
        obj = {"name": conflist.name, "cniVersion": conflist.cni_version, "plugins": plugins}
    return parse_conflist(obj), replaced


# --- results ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Interface:
    name: str
    mac: str = ""
    sandbox: str = ""  # the netns path for an interface inside the container, "" on the host


@dataclass(frozen=True)
class IPConfig:
    address: str  # CIDR, e.g. 10.244.0.2/24
    gateway: str = ""
    interface: int | None = None  # index into `interfaces`


@dataclass(frozen=True)
class Route:
    dst: str
    gw: str = ""


@dataclass(frozen=True)
class DNS:
    nameservers: tuple[str, ...] = ()
    domain: str = ""
    search: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class CniResult:
    cni_version: str
    interfaces: tuple[Interface, ...] = ()
    ips: tuple[IPConfig, ...] = ()
    routes: tuple[Route, ...] = ()
    dns: DNS = DNS()
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    def pod_ips(self, ifname: str, netns_path: str) -> tuple[str, ...]:
        """The addresses (without prefix length) of the container's interface `ifname`, in
        the order the result lists them: those whose interface index points at an interface
        of that name with a sandbox (`netns_path`, or any sandbox if no interface names that
        one exactly), and, as containerd's go-cni does, those that name no interface (0.2.0
        results and IPAM-only chains have none)."""
        inside = [i for i, x in enumerate(self.interfaces) if x.name == ifname and x.sandbox]
        exact = [i for i in inside if self.interfaces[i].sandbox == netns_path]
        wanted = set(exact or inside)
        return tuple(str(ipaddress.ip_interface(ip.address).ip) for ip in self.ips
                     if ip.interface is None or ip.interface in wanted)

    def to_dict(self, version: str) -> dict:
        """The result in the JSON of spec `version` (libcni's GetAsVersion; 0.2.0 keeps the
        first address of each family, as convertTo02x does)."""
        dns = {k: v for k, v in (("nameservers", list(self.dns.nameservers)),
                                 ("domain", self.dns.domain), ("search", list(self.dns.search)),
                                 ("options", list(self.dns.options))) if v}
        if not version_at_least(version, "0.3.0"):
            out: dict[str, Any] = {"cniVersion": version}
            for ip in self.ips:
                key = "ip6" if ipaddress.ip_interface(ip.address).version == 6 else "ip4"
                if key not in out:
                    out[key] = {"ip": ip.address, **({"gateway": ip.gateway} if ip.gateway
                                                     else {})}
            out["dns"] = dns
            return out
        old = not version_at_least(version, "1.0.0")  # 0.3.x/0.4.0 carry "version"

        def ipc(ip: IPConfig) -> dict:
            d: dict[str, Any] = {}
            if old:
                d["version"] = str(ipaddress.ip_interface(ip.address).version)
            if ip.interface is not None:
                d["interface"] = ip.interface
            d["address"] = ip.address
            if ip.gateway:
                d["gateway"] = ip.gateway
            return d

        out = {"cniVersion": version}
        if self.interfaces:
            out["interfaces"] = [{k: v for k, v in (("name", i.name), ("mac", i.mac),
                                                    ("sandbox", i.sandbox)) if v}
                                 for i in self.interfaces]
        if self.ips:
            out["ips"] = [ipc(ip) for ip in self.ips]
        if self.routes:
            out["routes"] = [{"dst": r.dst, **({"gw": r.gw} if r.gw else {})}
                             for r in self.routes]
        out["dns"] = dns
        return out


def _strs(v: Any, what: str) -> tuple[str, ...]:
    if v is None:
        return ()
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ValueError(f"{what} must be a list of strings")
    return tuple(v)


def _dns(d: Any) -> DNS:
    if d is None:
        return DNS()
    if not isinstance(d, dict):
        raise ValueError("dns must be a map")
    return DNS(_strs(d.get("nameservers"), "dns.nameservers"), str(d.get("domain") or ""),
               _strs(d.get("search"), "dns.search"), _strs(d.get("options"), "dns.options"))


def _cidr(v: Any, what: str) -> str:
    try:
        if not isinstance(v, str) or "/" not in v:
            raise ValueError
        ipaddress.ip_interface(v)
    except ValueError:
        raise ValueError(f"{what} {json.dumps(v)} is not an address with a prefix length "
                         "(e.g. 10.244.0.2/24)") from None
    return v


def _ip(v: Any, what: str) -> str:
    if v in (None, ""):
        return ""
    try:
        ipaddress.ip_address(v)
    except ValueError:
        raise ValueError(f"{what} {json.dumps(v)} is not an IP address") from None
    return str(v)


def _routes(v: Any, what: str) -> tuple[Route, ...]:
    if v is None:
        return ()
    if not isinstance(v, list):
        raise ValueError(f"{what} must be a list")
    out = []
    for i, r in enumerate(v):
        if not isinstance(r, dict):
            raise ValueError(f"{what}[{i}] must be a map")
        dst = r.get("dst")
        try:
            ipaddress.ip_network(dst, strict=False)
        except (ValueError, TypeError):
            raise ValueError(f"{what}[{i}].dst {json.dumps(dst)} is not a CIDR") from None
        out.append(Route(dst, _ip(r.get("gw"), f"{what}[{i}].gw")))
    return tuple(out)


def parse_result(data: Mapping, version: str) -> CniResult:
    """A plugin's result. Its own cniVersion decides the format; without one it is taken
    to be `version`, the config's (libcni fixupResultVersion). 0.1.0/0.2.0 results (ip4,
    ip6) are converted as libcni's convertFrom02x does: their IPs name no interface.
    Raises ValueError saying what is wrong."""
    if not isinstance(data, Mapping):
        raise ValueError("a result must be a JSON object")
    raw = copy.deepcopy(dict(data))
    v = raw.get("cniVersion") or version
    if not isinstance(v, str) or v not in VERSIONS:
        raise ValueError(f"result cniVersion {json.dumps(v)} is not one of {', '.join(VERSIONS)}")
    raw["cniVersion"] = v
    if not version_at_least(v, "0.3.0"):
        ips, routes = [], []
        for key in ("ip4", "ip6"):
            c = raw.get(key)
            if c is None:
                continue
            if not isinstance(c, dict):
                raise ValueError(f"{key} must be a map")
            ips.append(IPConfig(_cidr(c.get("ip"), f"{key}.ip"),
                                _ip(c.get("gateway"), f"{key}.gateway")))
            routes += _routes(c.get("routes"), f"{key}.routes")
        return CniResult(v, (), tuple(ips), tuple(routes), _dns(raw.get("dns")), raw)

    ifaces_raw = raw.get("interfaces") or []
    if not isinstance(ifaces_raw, list):
        raise ValueError("interfaces must be a list")
    ifaces = []
    for i, x in enumerate(ifaces_raw):
        if not isinstance(x, dict) or not isinstance(x.get("name"), str):
            raise ValueError(f"interfaces[{i}] must be a map with a name")
        ifaces.append(Interface(x["name"], str(x.get("mac") or ""), str(x.get("sandbox") or "")))
    ips_raw = raw.get("ips") or []
    if not isinstance(ips_raw, list):
        raise ValueError("ips must be a list")
    ips = []
    for i, x in enumerate(ips_raw):
        if not isinstance(x, dict):
            raise ValueError(f"ips[{i}] must be a map")
        idx = x.get("interface")
        if idx is not None and (not isinstance(idx, int) or isinstance(idx, bool)
                                or not 0 <= idx < len(ifaces)):
            # go-cni validateInterfaceConfig: the index must name one of `interfaces`
            raise ValueError(f"ips[{i}].interface {json.dumps(idx)} is not an index into "
                             f"interfaces (it has {len(ifaces)})")
        ips.append(IPConfig(_cidr(x.get("address"), f"ips[{i}].address"),
                            _ip(x.get("gateway"), f"ips[{i}].gateway"), idx))
    return CniResult(v, tuple(ifaces), tuple(ips), _routes(raw.get("routes"), "routes"),
                     _dns(raw.get("dns")), raw)


# --- errors -------------------------------------------------------------------------------

class CniPluginError(KernelError):
    """A CNI plugin failed: its error (code, msg, details from the JSON it printed, or its
    stderr), which plugin, which command and for which pod. A runtime failure, not bad
    input (exit status 1): the same config may work once the cause is gone."""

    def __init__(self, plugin: str, command: str, pod: str, msg: str, *,
                 code: int | None = None, details: str = "", stderr: str = "",
                 container_id: str = "") -> None:
        self.plugin, self.command, self.pod = plugin, command, pod
        self.container_id = container_id
        self.code, self.msg, self.details, self.stderr = code, msg, details, stderr
        self.cleanup_error: str | None = None  # set when the DEL after a failed ADD failed too
        super().__init__(self._text())

    def _text(self) -> str:
        who = f"pod {self.pod}" if self.pod else f"container {self.container_id or '?'}"
        head = f"CNI plugin {self.plugin} {self.command} for {who}: "
        code = ""
        if self.code is not None:
            meaning = ERROR_CODES.get(self.code) or ("plugin-specific" if self.code >= 100
                                                     else "")
            code = f"code {self.code}" + (f" ({meaning})" if meaning else "") + ": "
        return head + code + self.msg + (f" ({self.details})" if self.details else "")


class CniPluginNotFoundError(CniPluginError):
    """No executable of the plugin's type in any CNI bin directory."""


class CniPluginTimeoutError(CniPluginError):
    """The plugin ran longer than the runtime allows; it was killed."""


def plugin_error(plugin: str, command: str, pod: str, returncode: int, stdout: bytes,
                 stderr: bytes, container_id: str = "") -> CniPluginError:
    """A failed plugin's error from what it printed (libcni RawExec.pluginErr): the error
    JSON on stdout ({"code", "msg", "details"}), else its stderr."""
    err_text = stderr.decode(errors="replace").strip()
    out_text = stdout.decode(errors="replace").strip()
    how = f"exit status {returncode}" if returncode >= 0 else f"killed by signal {-returncode}"

    def error(msg: str, code: int | None = None, details: str = "") -> CniPluginError:
        return CniPluginError(plugin, command, pod, msg, code=code, details=details,
                              stderr=err_text, container_id=container_id)

    if not out_text:
        return error(f"{err_text or 'failed with no error message'} [{how}]")
    try:
        e = json.loads(out_text)
        if not isinstance(e, dict):
            raise ValueError
    except ValueError:
        return error(f"failed ({how}) and its output is not CNI error JSON: {out_text[:500]}"
                     + (f"; stderr: {err_text[:500]}" if err_text else ""))
    code = e.get("code")
    return error(str(e.get("msg") or err_text or how),
                 code if isinstance(code, int) and not isinstance(code, bool) else None,
                 str(e.get("details") or ""))


# --- versions -----------------------------------------------------------------------------

def supported_versions(info: Mapping) -> tuple[str, ...]:
    """The spec versions a plugin's VERSION output says it supports (libcni
    PluginDecoder: a bare {"cniVersion": "0.2.0"} means 0.1.0 and 0.2.0)."""
    listed = info.get("supportedVersions")
    if isinstance(listed, list) and listed:
        return tuple(str(v) for v in listed)
    if info.get("cniVersion") == "0.2.0":
        return ("0.1.0", "0.2.0")
    return ()


def version_problems(conflist: NetworkConfigList, infos: Mapping[str, Mapping]) -> list[str]:
    """What stops the plugins (type -> VERSION output) from running the list's cniVersion;
    empty when every plugin supports it (libcni ValidateNetworkList)."""
    out = []
    for t in dict.fromkeys(p.type for p in conflist.plugins):
        have = supported_versions(infos.get(t, {}))
        if conflist.cni_version not in have:
            what = f"supports only {', '.join(have)}" if have else \
                "did not say which versions it supports"
            out.append(f"plugin {t} {what}: the config asks {conflist.cni_version}")
    return out


# --- CNI_ARGS -----------------------------------------------------------------------------

def pod_cni_args(namespace: str, name: str, container_id: str, uid: str = ""
                 ) -> tuple[tuple[str, str], ...]:
    """The CNI_ARGS a Kubernetes runtime passes for a pod (containerd's toCNILabels, the
    dockershim's order): IgnoreUnknown=1 so plugins accept keys they do not know, the pod's
    namespace and name, the sandbox (infra container) ID, and K8S_POD_UID when `uid` is
    given (containerd 1.7+ passes it; containerd's map has no order, this one is fixed)."""
    args = [("IgnoreUnknown", "1"), ("K8S_POD_NAMESPACE", namespace), ("K8S_POD_NAME", name),
            ("K8S_POD_INFRA_CONTAINER_ID", container_id)]
    if uid:
        args.append(("K8S_POD_UID", uid))
    return tuple(args)


def cni_args_env(args: Iterable[Sequence[str]]) -> str:
    """The CNI_ARGS value: K=V pairs joined by ';' (libcni invoke stringify)."""
    return ";".join(f"{k}={v}" for k, v in args)


def pod_of(args: Iterable[Sequence[str]]) -> str:
    """The pod an attachment is for, "NAMESPACE/NAME" from the K8S_POD_* args ("" if they
    do not say)."""
    d = dict(args)
    if d.get("K8S_POD_NAME"):
        return f"{d.get('K8S_POD_NAMESPACE') or 'default'}/{d['K8S_POD_NAME']}"
    return ""


# --- the result cache ---------------------------------------------------------------------

def cache_file_name(network: str, container_id: str, ifname: str) -> str:
    """libcni getCacheFilePath's file name (it lives in <cacheDir>/results/)."""
    if not (network and container_id and ifname):
        raise ValueError("a cache file needs the network name, container ID and interface")
    return f"{network}-{container_id}-{ifname}"


@dataclass(frozen=True)
class CacheRecord:
    """One cached attachment (libcni cachedInfo, kind cniCacheV1)."""

    container_id: str
    ifname: str
    network: str
    config: bytes  # the conflist's bytes
    netns: str = ""
    cni_args: tuple[tuple[str, str], ...] = ()
    capability_args: dict = field(default_factory=dict)
    result: dict = field(default_factory=dict)

    @property
    def conflist(self) -> NetworkConfigList:
        return parse_conflist(self.config, where="cached config")


def cache_record(conflist: NetworkConfigList, container_id: str, ifname: str, netns: str,
                 cni_args: Iterable[Sequence[str]], capability_args: Mapping[str, Any],
                 result: Mapping | None) -> bytes:
    """The cache file's bytes, as libcni's cacheAdd writes them: the struct's fields in
    order, `config` base64 (Go's []byte), the empty ones left out (omitempty)."""
    fields: list[tuple[str, Any]] = [
        ("kind", CACHE_KIND), ("containerId", container_id),
        ("config", base64.b64encode(conflist.raw).decode()), ("ifName", ifname),
        ("networkName", conflist.name)]
    args = [[k, v] for k, v in cni_args]
    for key, value in (("netns", netns), ("cniArgs", args),
                       ("capabilityArgs", dict(capability_args)),
                       ("result", dict(result or {}))):
        if value:
            fields.append((key, value))
    return b"{" + b",".join(go_json(k) + b":" + go_json(v) for k, v in fields) + b"}"


def read_cache(data: bytes) -> CacheRecord:
    """A cache file's record. Raises ValueError for anything but a cniCacheV1 record with
    a network name, container ID and interface (libcni skips those)."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"not JSON: {e}") from e
    if not isinstance(obj, dict) or obj.get("kind") != CACHE_KIND:
        raise ValueError(f"not a {CACHE_KIND} record")
    for key in ("containerId", "ifName", "networkName", "config"):
        if not isinstance(obj.get(key), str) or not obj[key]:
            raise ValueError(f"{key} missing")
    try:
        config = base64.b64decode(obj["config"], validate=True)
    except ValueError as e:
        raise ValueError(f"config is not base64: {e}") from e
    args = obj.get("cniArgs") or []
    if not isinstance(args, list) or not all(isinstance(a, list) and len(a) == 2
                                             and all(isinstance(x, str) for x in a)
                                             for a in args):
        raise ValueError("cniArgs must be a list of [key, value] pairs")
    caps = obj.get("capabilityArgs") or {}
    result = obj.get("result") or {}
    if not isinstance(caps, dict) or not isinstance(result, dict):
        raise ValueError("capabilityArgs and result must be maps")
    return CacheRecord(obj["containerId"], obj["ifName"], obj["networkName"], config,
                       str(obj.get("netns") or ""), tuple((k, v) for k, v in args), caps,
                       result)
