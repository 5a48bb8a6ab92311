"""Integration tests build real labs; they need root and network namespaces. They use
netlab's own pytest plugin (fixtures netlab_lab / netlab_lab_name, marker, sweep)."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.netlab)

