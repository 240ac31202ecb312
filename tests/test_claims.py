"""Claims (vidcorr.runs.claims): one process per item, and a dead process's claim is taken over."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

from vidcorr.runs import claims


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def _write(path, **fields) -> None:
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "started": None, "token": "other",
                                **fields}))


def test_one_claim_at_a_time_and_a_release_frees_it(tmp_path):
    path = tmp_path / "stage" / "clip.claim"
    first = claims.claim(path)
    assert first is not None and first.held()
    record = json.loads(path.read_text())
    assert (record["host"], record["pid"], record["token"]) == (socket.gethostname(), os.getpid(), first.token)
    assert record["started"] == claims.process_start(os.getpid()) and record["started"] is not None
    assert claims.claim(path) is None  # held by a live process (this one)
    first.release()
    assert not path.exists()
    second = claims.claim(path)
    assert second is not None and second.token != first.token


def test_a_claim_of_a_dead_process_on_this_host_is_taken_over_at_once(tmp_path):
    path = tmp_path / "clip.claim"
    _write(path, pid=_dead_pid(), token="dead")
    taken = claims.claim(path)
    assert taken is not None and json.loads(path.read_text())["token"] == taken.token
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.claim"]  # the stale file moved aside is gone


def test_a_reused_process_id_does_not_keep_a_dead_claim(tmp_path):
    path = tmp_path / "clip.claim"
    started = claims.process_start(os.getpid())
    _write(path, started=started + 1)  # this pid, but another process's start time
    assert claims.claim(path) is not None
    path.unlink()
    _write(path, started=started)  # this very process: alive
    assert claims.claim(path) is None


def test_another_hosts_claim_is_stale_only_when_not_refreshed_for_the_stale_time(tmp_path):
    path = tmp_path / "clip.claim"
    _write(path, host="elsewhere.example", pid=1)
    assert claims.claim(path, stale_after_s=60) is None
    os.utime(path, (time.time() - 61, time.time() - 61))
    assert claims.claim(path, stale_after_s=60) is not None


def test_an_unreadable_claim_is_judged_by_its_age(tmp_path):
    path = tmp_path / "clip.claim"
    path.write_text("")  # being written by its maker
    assert claims.claim(path, stale_after_s=60) is None
    os.utime(path, (time.time() - 61, time.time() - 61))
    assert claims.claim(path, stale_after_s=60) is not None


def test_a_claim_taken_over_is_no_longer_held_and_its_release_leaves_the_new_one(tmp_path):
    path = tmp_path / "clip.claim"
    mine = claims.claim(path, stale_after_s=60)
    assert mine is not None
    os.utime(path, (time.time() - 61, time.time() - 61))
    other = json.loads(path.read_text())
    path.write_text(json.dumps({**other, "host": "elsewhere.example"}))  # as if made on a host that died
    os.utime(path, (time.time() - 61, time.time() - 61))
    theirs = claims.claim(path, stale_after_s=60)
    assert theirs is not None and not mine.held() and theirs.held()
    mine.release()
    assert json.loads(path.read_text())["token"] == theirs.token


def test_refresh_marks_the_claim_alive(tmp_path):
    path = tmp_path / "clip.claim"
    held = claims.claim(path, stale_after_s=0.0)  # refreshes on every call
    assert held is not None
    os.utime(path, (1000.0, 1000.0))
    held.refresh()
    assert time.time() - path.stat().st_mtime < 60
