"""The import rules that keep the house in shape, checked on the source (every import,
module level or inside a function) and on a fresh interpreter:

- pure modules (documents, model, plan, compile, features, nftables, the policy engine,
  views, targets) import nothing of the kernel side, the runtime or the verifiers, and no
  netlink, packet or process library: they run without root and are golden-tested;
- only netlab.kernel uses subprocess, ctypes (setns/unshare/mount) or pyroute2;
- the NetworkPolicy renderer and the probes never see the policy engine, so `check`
  compares two independent implementations;
- the CLI talks to the API only;
- no import cycles between modules.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "netlab"

PURE = ("netlab.errors", "netlab.names", "netlab.fields", "netlab.loader", "netlab.model",
        "netlab.plan", "netlab.compile", "netlab.intents", "netlab.views", "netlab.targets",
        "netlab.policy", "netlab.features", "netlab.nft", "netlab.kernel.port",
        "netlab.scheduling", "netlab.jobs", "netlab.cni", "netlab.gateway",
        "netlab.expect_fields", "netlab.nginx_conf")
NOT_FOR_PURE = ("netlab.kernel", "netlab.lab", "netlab.converge", "netlab.state",
                "netlab.probe", "netlab.trace", "netlab.capture", "netlab.check",
                "netlab.expectations", "netlab.cli", "netlab.graph", "netlab.http_client",
                "netlab.dns_client", "pyroute2", "scapy", "subprocess", "ctypes")
KERNEL_ONLY = ("subprocess", "ctypes", "pyroute2")
CLI_MAY_USE = ("netlab.cli", "netlab.lab", "netlab.views", "netlab.errors", "netlab.loader",
               "netlab.expectations")


def module_name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _in(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _target(node: ast.ImportFrom, alias: str) -> str:
    """`from a.b import c`: the module a.b.c if it is one, else a.b."""
    sub = f"{node.module}.{alias}"
    return sub if sub in MODULES else str(node.module)


def imports(path: Path, module_level: bool = False) -> set[str]:
    """Modules a file imports; with module_level, only those run when it is imported (not
    inside functions, not under `if TYPE_CHECKING`)."""
    tree = ast.parse(path.read_text())
    nodes: list[ast.AST] = []
    if module_level:
        todo: list[ast.AST] = list(tree.body)
        while todo:
            n = todo.pop()
            if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test):
                todo += n.orelse
            elif isinstance(n, ast.If | ast.Try):
                todo += [*n.body, *getattr(n, "orelse", []), *getattr(n, "finalbody", []),
                         *[x for h in getattr(n, "handlers", []) for x in h.body]]
            else:
                nodes.append(n)
    else:
        nodes = list(ast.walk(tree))
    out: set[str] = set()
    for n in nodes:
        if isinstance(n, ast.Import):
            out |= {a.name for a in n.names}
        elif isinstance(n, ast.ImportFrom) and n.module and n.level == 0:
            out |= {_target(n, a.name) for a in n.names}
    return out


@pytest.mark.parametrize("module", [m for m in MODULES if _in(m, PURE)])
def test_pure_modules_import_nothing_of_the_kernel_side(module: str):
    bad = sorted(i for i in imports(MODULES[module]) if _in(i, NOT_FOR_PURE)
                 and not (module == "netlab.kernel.port" and i == "netlab.kernel"))
    assert not bad, f"{module} imports {bad}"


def test_only_the_kernel_package_runs_programs_or_enters_namespaces():
    offenders = {m: sorted(i for i in imports(p) if _in(i, KERNEL_ONLY))
                 for m, p in MODULES.items() if not _in(m, ("netlab.kernel",))}
    assert {m: v for m, v in offenders.items() if v} == {}


def test_the_renderer_and_the_probes_never_see_the_policy_engine():
    blind = ("netlab.features", "netlab.probe", "netlab.trace", "netlab.capture",
             "netlab.kernel")
    seeing = {m: sorted(i for i in imports(p) if _in(i, ("netlab.policy",)))
              for m, p in MODULES.items() if _in(m, blind)}
    assert {m: v for m, v in seeing.items() if v} == {}


def test_the_cli_talks_to_the_api_only():
    beyond = {m: sorted(i for i in imports(p) if i.startswith("netlab")
                        and not _in(i, CLI_MAY_USE) and i != "netlab")
              for m, p in MODULES.items() if _in(m, ("netlab.cli",))}
    assert {m: v for m, v in beyond.items() if v} == {}


def test_no_import_cycles():
    graph = {m: {i for i in imports(p, module_level=True) if i in MODULES and i != m}
             for m, p in MODULES.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycle = [*stack[stack.index(n):], n]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_pure_modules_load_no_kernel_library():
    pure = [m for m in MODULES if _in(m, PURE)]
    code = ("import sys\n" + "".join(f"import {m}\n" for m in pure) +
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('pyroute2', 'scapy') or m == 'netlab.kernel.linux'))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=True)
    assert r.stdout.strip() == "[]", r.stdout


def test_test_modules_have_distinct_basenames():
    """pytest's default import mode imports test modules by basename: two test_x.py in
    tests/unit and tests/integration collide in a fresh checkout (no __pycache__ to hide it)."""
    root = PKG.parent
    seen: dict[str, Path] = {}
    clashes = []
    for p in sorted((*root.glob("tests/**/test_*.py"), *root.glob("examples/**/test_*.py"))):
        if p.name in seen:
            clashes.append((str(seen[p.name].relative_to(root)), str(p.relative_to(root))))
        seen.setdefault(p.name, p)
    assert clashes == []
