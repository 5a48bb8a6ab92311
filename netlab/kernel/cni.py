"""Running CNI plugins: the only code that executes them. What it hands them (stdin,
CNI_ARGS, the cache record) comes from netlab.cni; this module adds the environment, the
node's network namespace, timeouts and the order of calls, as libcni (AddNetworkList,
DelNetworkList, CheckNetworkList) and containerd's CRI plugin use them together.

Every plugin runs inside the node's network namespace (`runtime_netns`): plugins such as
bridge and portmap create their host-side devices, sysctls and iptables rules in the
namespace they run in, which for netlab must be the node's, never the host's.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from netlab.cni import (
    CURRENT_VERSION,
    CacheRecord,
    CniPluginError,
    CniPluginNotFoundError,
    CniPluginTimeoutError,
    CniResult,
    NetworkConfigList,
    PluginConf,
    cache_file_name,
    cache_record,
    cni_args_env,
    ifname_problem,
    is_cni_name,
    parse_result,
    plugin_error,
    plugin_stdin,
    pod_of,
    read_cache,
    version_at_least,
    version_problems,
)
from netlab.errors import InputError, KernelError, NetlabError
from netlab.kernel import ns
from netlab.kernel.procs import BASE_ENV

Args = Sequence[tuple[str, str]] | Sequence[Sequence[str]]


class CniRuntime:
    """Calls the plugins of network configuration lists for one node.

    bin_dirs       where plugin executables are looked up (CNI_PATH), in order
    runtime_netns  the node's network namespace file; every plugin runs inside it.
                   None runs plugins in the caller's own namespace: a TEST SEAM only, for
                   fake plugins that touch no network (tests without root)
    cache_dir      libcni's cache directory (its /var/lib/cni): records in `results/`
    timeout        seconds one plugin call may take before it (its process group) is killed
    """

    def __init__(self, bin_dirs: Sequence[str], runtime_netns: Path | str | None,
                 cache_dir: Path, timeout: float = 10.0) -> None:
        self.bin_dirs = tuple(str(d) for d in bin_dirs)
        self.runtime_netns = Path(runtime_netns) if runtime_netns is not None else None
        self.cache_dir = Path(cache_dir)
        self.timeout = timeout
        self._versions: dict[str, dict] = {}

    # --- plugins ---------------------------------------------------------------------------

    def find(self, plugin_type: str) -> str | None:
        """The plugin's executable: the first regular file of that name in bin_dirs
        (libcni invoke.FindInPath), or None."""
        for d in self.bin_dirs:
            path = os.path.join(d, plugin_type)
            if os.path.isfile(path):
                return path
        return None

    def _exec(self, plugin_type: str, command: str, stdin: bytes, env: dict[str, str],
              pod: str, container_id: str) -> bytes:
        """Run one plugin to its end inside the runtime namespace; its stdout, or raise."""
        def error(cls: type[CniPluginError], msg: str) -> CniPluginError:
            return cls(plugin_type, command, pod, msg, container_id=container_id)

        path = self.find(plugin_type)
        if path is None:
            raise error(CniPluginNotFoundError,
                        f"no plugin executable {plugin_type!r} in the CNI bin directories "
                        f"{', '.join(self.bin_dirs) or '(none given)'}")
        if not os.access(path, os.X_OK):
            raise error(CniPluginNotFoundError, f"{path} is not executable")
        argv = [path]
        where: contextlib.AbstractContextManager = contextlib.nullcontext()
        if self.runtime_netns is not None:
            if not self.runtime_netns.exists():
                raise KernelError(f"the node's network namespace {self.runtime_netns} does not "
                                  f"exist: CNI plugin {plugin_type} {command} not run (plugins "
                                  "run inside the node's namespace, never the host's)")
            # this thread enters the node's namespace while it starts the plugin, which is
            # born there (a namespace is per thread; nsenter would cost a process per call)
            where = ns.entered(str(self.runtime_netns))
        try:
            with where:
                proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, env=env, cwd="/",
                                        start_new_session=True, close_fds=True)
        except OSError as e:
            raise error(CniPluginError, f"could not start {argv[0]}: {e.strerror}") from e
        try:
            out, err = proc.communicate(stdin, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            # its own session: the group is the plugin and whatever it started (iptables...)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            try:
                proc.communicate(timeout=2)
            except subprocess.TimeoutExpired:  # a descendant left the group, holding a pipe
                for f in (proc.stdin, proc.stdout, proc.stderr):
                    with contextlib.suppress(OSError):
                        if f:
                            f.close()
                proc.wait()
            raise error(CniPluginTimeoutError,
                        f"did not finish within {self.timeout:g} s and was killed "
                        f"({path}, in {self.runtime_netns or 'the current namespace'})"
                        ) from None
        if proc.returncode != 0:
            raise plugin_error(plugin_type, command, pod, proc.returncode, out, err,
                               container_id)
        return out

    def _env(self, command: str, container_id: str, netns: str, ifname: str,
             cni_args: Args) -> dict[str, str]:
        # The spec's variables and PATH (portmap runs iptables); nothing of the caller's.
        return {"CNI_COMMAND": command, "CNI_CONTAINERID": container_id, "CNI_NETNS": netns,
                "CNI_IFNAME": ifname, "CNI_ARGS": cni_args_env(cni_args),
                "CNI_PATH": ":".join(self.bin_dirs), "PATH": BASE_ENV["PATH"]}

    def version(self, plugin_type: str) -> dict:
        """The plugin's VERSION output ({"cniVersion", "supportedVersions"}), asked once per
        type. Like libcni's GetVersionInfo: placeholder CNI_NETNS/CNI_IFNAME for plugins
        built on old skel versions, and a plugin that does not know VERSION is 0.1.0."""
        if plugin_type not in self._versions:
            env = self._env("VERSION", "", "dummy", "dummy", ())
            stdin = json.dumps({"cniVersion": CURRENT_VERSION}).encode()
            try:
                out = self._exec(plugin_type, "VERSION", stdin, env, "", "")
            except CniPluginError as e:
                if e.msg == "unknown CNI_COMMAND: VERSION":
                    self._versions[plugin_type] = {"cniVersion": "0.1.0",
                                                   "supportedVersions": ["0.1.0"]}
                    return dict(self._versions[plugin_type])
                raise
            try:
                info = json.loads(out)
                if not isinstance(info, dict) or not info.get("cniVersion"):
                    raise ValueError("no cniVersion")
            except ValueError as e:
                raise CniPluginError(plugin_type, "VERSION", "", f"its output is not CNI "
                                     f"version JSON ({e}): {out[:300]!r}") from None
            self._versions[plugin_type] = info
        return dict(self._versions[plugin_type])

    def version_problems(self, conflist: NetworkConfigList) -> list[str]:
        """Why the list's plugins cannot run its cniVersion (empty: they all can)."""
        return version_problems(conflist, {p.type: self.version(p.type)
                                           for p in conflist.plugins})

    def _invoke(self, conflist: NetworkConfigList, plugin: PluginConf, command: str,
                prev: dict | None, container_id: str, netns: str, ifname: str,
                cni_args: Args, capability_args: Mapping[str, Any]) -> bytes:
        stdin = plugin_stdin(conflist, plugin, prev, capability_args)
        env = self._env(command, container_id, netns, ifname, cni_args)
        return self._exec(plugin.type, command, stdin, env, pod_of(cni_args), container_id)

    @staticmethod
    def _check_ids(container_id: str, ifname: str) -> None:
        # libcni addNetwork's ValidateContainerID / ValidateInterfaceName
        if not container_id or not is_cni_name(container_id):
            raise InputError(f"{container_id!r} is not a valid CNI container ID: letters, "
                             "digits, '_', '.' and '-', starting with a letter or digit",
                             field="cni.containerID")
        problem = ifname_problem(ifname)
        if problem:
            raise InputError(f"{ifname!r} {problem}", field="cni.ifName")

    # --- the cache -------------------------------------------------------------------------

    def cache_path(self, network: str, container_id: str, ifname: str,
                   cache_dir: Path | None = None) -> Path:
        return (cache_dir or self.cache_dir) / "results" / cache_file_name(
            network, container_id, ifname)

    def cached(self, network: str, container_id: str, ifname: str,
               cache_dir: Path | None = None) -> CacheRecord | None:
        """The attachment's cache record; None if there is none or it is unreadable."""
        try:
            return read_cache(self.cache_path(network, container_id, ifname,
                                              cache_dir).read_bytes())
        except (OSError, ValueError):
            return None

    def _write_cache(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, path)

    def attachments(self, cache_dir: Path | None = None) -> list[tuple[Path, CacheRecord | str]]:
        """Every cache file, sorted by name, with its record or why it is unreadable
        (libcni GetCachedAttachments skips those)."""
        d = (cache_dir or self.cache_dir) / "results"
        try:
            files = sorted(p for p in d.iterdir() if p.is_file() and not p.name.startswith("."))
        except FileNotFoundError:
            return []
        out: list[tuple[Path, CacheRecord | str]] = []
        for p in files:
            try:
                out.append((p, read_cache(p.read_bytes())))
            except (OSError, ValueError) as e:
                out.append((p, str(e)))
        return out

    # --- the operations -------------------------------------------------------------------

    def add(self, conflist: NetworkConfigList, container_id: str, netns_path: str | Path,
            ifname: str, cni_args: Args = (), capability_args: Mapping[str, Any] | None = None
            ) -> CniResult:
        """ADD the plugins in order, each given the previous one's result (libcni
        AddNetworkList), then cache the final result. If a plugin fails, the whole list is
        deleted again, in reverse order and without a cached result, as containerd's
        RunPodSandbox does after a failed setup (libcni itself leaves that to the runtime);
        the plugin's error is raised, with the cleanup's error noted on it if that failed."""
        self._check_ids(container_id, ifname)
        caps = dict(capability_args or {})
        args = tuple((k, v) for k, v in cni_args)
        netns = str(netns_path)
        pod = pod_of(args)
        prev: dict | None = None
        try:
            for plugin in conflist.plugins:
                out = self._invoke(conflist, plugin, "ADD", prev, container_id, netns, ifname,
                                   args, caps)
                prev = self._result(out, conflist, plugin, pod, container_id)
        except CniPluginError as e:
            try:
                self._delete(conflist, container_id, netns, ifname, args, caps, None,
                             use_cache=False)
            except NetlabError as d:
                e.cleanup_error = str(d)
                e.add_note(f"cleaning up (DEL of every plugin, in reverse) failed too: {d}")
            raise
        assert prev is not None  # a list has at least one plugin
        path = self.cache_path(conflist.name, container_id, ifname)
        try:
            self._write_cache(path, cache_record(conflist, container_id, ifname, netns, args,
                                                 caps, prev))
        except OSError as e:
            # without the record DEL and CHECK lack the result: undo the ADD (libcni fails
            # AddNetworkList when cacheAdd fails, and containerd then tears it down)
            err = KernelError(f"could not write the CNI cache record {path} for network "
                              f"{conflist.name}: {e.strerror or e}; the attachment was deleted")
            try:
                self._delete(conflist, container_id, netns, ifname, args, caps, None,
                             use_cache=False)
            except NetlabError as d:
                err.add_note(f"deleting it failed too: {d}")
            raise err from e
        return parse_result(prev, conflist.cni_version)

    @staticmethod
    def _result(out: bytes, conflist: NetworkConfigList, plugin: PluginConf, pod: str,
                container_id: str) -> dict:
        """A plugin's ADD output as the next plugin's prevResult: its JSON, with the config's
        cniVersion if it gave none (libcni fixupResultVersion); validated."""
        try:
            data = json.loads(out)
            result = parse_result(data, conflist.cni_version)
        except ValueError as e:
            text = out.decode(errors="replace").strip()[:300]
            raise CniPluginError(plugin.type, "ADD", pod, f"succeeded but its output is not a "
                                 f"CNI result ({e}): {text!r}", container_id=container_id
                                 ) from None
        return result.raw

    def delete(self, conflist: NetworkConfigList, container_id: str, netns_path: str | Path,
               ifname: str, cni_args: Args = (), capability_args: Mapping[str, Any] | None = None
               ) -> None:
        """DEL the plugins in reverse order (libcni DelNetworkList), each given the cached
        result of ADD (cniVersion 0.4.0 and later) when there is one, then drop the cache
        record. Works without a cache record and with the pod's namespace gone: CNI_NETNS is
        then empty, as containerd passes it for a closed namespace. The first failing plugin
        stops it and keeps the record, for a retry."""
        self._check_ids(container_id, ifname)
        self._delete(conflist, container_id, str(netns_path), ifname,
                     tuple((k, v) for k, v in cni_args), dict(capability_args or {}), None)

    def _delete(self, conflist: NetworkConfigList, container_id: str, netns: str, ifname: str,
                args: tuple[tuple[str, str], ...], caps: dict, cache_dir: Path | None,
                use_cache: bool = True) -> None:
        path = self.cache_path(conflist.name, container_id, ifname, cache_dir)
        prev = None
        if use_cache and version_at_least(conflist.cni_version, "0.4.0"):
            prev = self._prev_result(conflist, container_id, ifname, cache_dir, drop_bad=True)
        if not netns or not os.path.exists(netns):
            netns = ""
        for plugin in reversed(conflist.plugins):
            self._invoke(conflist, plugin, "DEL", prev, container_id, netns, ifname, args, caps)
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            path.unlink()

    def _prev_result(self, conflist: NetworkConfigList, container_id: str, ifname: str,
                     cache_dir: Path | None, drop_bad: bool = False) -> dict | None:
        """The cached result of ADD in the config's version (libcni getCachedResult)."""
        path = self.cache_path(conflist.name, container_id, ifname, cache_dir)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            result = read_cache(data).result
            if not result:
                return None
            if result.get("cniVersion") == conflist.cni_version:
                return result
            return parse_result(result, conflist.cni_version).to_dict(conflist.cni_version)
        except ValueError:
            if drop_bad:  # libcni DelNetworkList: an unreadable record is removed, not used
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                return None
            raise

    def check(self, conflist: NetworkConfigList, container_id: str, netns_path: str | Path,
              ifname: str, cni_args: Args = (), capability_args: Mapping[str, Any] | None = None
              ) -> None:
        """CHECK the plugins in order, each given the cached result of ADD (libcni
        CheckNetworkList): refused below cniVersion 0.4.0, which has no CHECK, and a no-op
        when the list says disableCheck."""
        if not version_at_least(conflist.cni_version, "0.4.0"):
            raise InputError(f"configuration version {conflist.cni_version!r} does not support "
                             "the CHECK command (CNI 0.4.0 added it)",
                             field="cni.config.cniVersion")
        if conflist.disable_check:
            return
        self._check_ids(container_id, ifname)
        args = tuple((k, v) for k, v in cni_args)
        try:
            prev = self._prev_result(conflist, container_id, ifname, None)
        except ValueError as e:
            raise KernelError(f"the cached result of network {conflist.name} for "
                              f"{container_id}/{ifname} is unreadable ({e}): CHECK needs it"
                              ) from e
        if prev is None:
            pod = pod_of(args)
            who = f"pod {pod}" if pod else f"container {container_id}"
            raise KernelError(f"no cached result of ADD on network {conflist.name} for {who} "
                              f"({ifname}, in {self.cache_dir}): CHECK compares against it; "
                              "was it added?")
        for plugin in conflist.plugins:
            self._invoke(conflist, plugin, "CHECK", prev, container_id, str(netns_path), ifname,
                         args, dict(capability_args or {}))

    def delete_from_cache(self, cache_dir: Path | None = None) -> list[NetlabError]:
        """DEL every attachment cached in `cache_dir` (default: this runtime's), with the
        config, arguments and pod namespace its record holds: what `down` needs after a
        crash. Goes through all of them; returns the errors (an unreadable record is left
        in place and reported)."""
        errors: list[NetlabError] = []
        for path, rec in self.attachments(cache_dir):
            if isinstance(rec, str):
                errors.append(KernelError(f"{path}: not a CNI cache record ({rec}); left "
                                          "in place"))
                continue
            try:
                conflist = rec.conflist
                if conflist.name != rec.network:
                    raise KernelError(f"{path}: its config is network {conflist.name!r}, its "
                                      f"record says {rec.network!r}")
                self._delete(conflist, rec.container_id, rec.netns, rec.ifname, rec.cni_args,
                             dict(rec.capability_args), cache_dir)
            except NetlabError as e:
                errors.append(e)
        return errors
