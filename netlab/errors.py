"""Typed errors. Every message is written for a person: what, where, and what to do."""

from __future__ import annotations


class NetlabError(Exception):
    """Base of every error netlab raises on purpose. `exit_code` is what the CLI exits with."""

    exit_code = 1


class InputError(NetlabError):
    """The manifests or the command line are wrong (exit status 2). Nothing was changed."""

    exit_code = 2

    def __init__(self, message: str, *, file: str | None = None, obj: str | None = None,
                 field: str | None = None, line: int | None = None) -> None:
        self.file, self.obj, self.field, self.line = file, obj, field, line
        where = []
        if file:
            where.append(f"{file}:{line}" if line else file)
        if obj:
            where.append(obj)
        if field:
            where.append(field)
        self.detail = message
        super().__init__(": ".join([*where, message]) if where else message)


class NotRootError(NetlabError):
    """The operation needs root (it creates network namespaces)."""

    exit_code = 1


class LabNotFoundError(NetlabError):
    """No lab by that name, or no lab at all, or several labs and no --lab given."""

    exit_code = 1


class LabExistsError(NetlabError):
    exit_code = 1


class PodNotFoundError(NetlabError):
    exit_code = 1


class KernelError(NetlabError):
    """The kernel refused an operation (netlink error, nft error, failed process start)."""

    exit_code = 1


class RulesetError(InputError):
    """An nftables table netlab rendered would not load: a name or comment nft refuses, or a
    reference to a chain, set or map the table does not have. Found before loading, so nothing
    was changed; usually a manifest name too long for nft (exit status 2)."""
