"""The lab's state files: the recorded processes are also saved alone, so `down` reads them
without parsing the state (a large lab's plan)."""

from __future__ import annotations

import pytest

from netlab.kernel.port import Started


@pytest.fixture
def state(tmp_path, monkeypatch):
    from netlab import names, state

    monkeypatch.setattr(names, "STATE_ROOT", tmp_path)
    return state


def test_recorded_reads_the_processes_file_and_falls_back_to_the_state(state):
    st = state.LabState("lab1", processes={"default/a": [state.ProcessRecord("c", 42, 7)]})
    state.save(st)
    assert state.processes_file("lab1").exists()
    assert state.recorded("lab1") == [Started(42, 7)]
    state.processes_file("lab1").unlink()  # a state saved before the processes file existed
    assert state.recorded("lab1") == [Started(42, 7)]
    assert state.load("lab1").processes == st.processes


def test_recorded_is_empty_without_state_or_with_a_damaged_one(state):
    assert state.recorded("nolab") == []
    state.save(state.LabState("lab2"))
    state.processes_file("lab2").write_text("{not json")
    assert state.recorded("lab2") == []
