"""vidcorr.staging: outputs appear whole or not at all; atomic writes get the umask's mode."""

import errno
import os
import socket
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from vidcorr.errors import InputError
from vidcorr.io.atomic import atomic_path, default_file_mode
from vidcorr.io.staging import (
    OutputExistsError,
    OutputWriteError,
    check_output,
    recover,
    staged_file,
    staged_folder,
    verify_written_video,
)

HOST = socket.gethostname()


def _dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _listing(folder):
    return sorted(p.name for p in folder.iterdir())


def test_a_new_folder_appears_whole_and_the_staging_folder_is_gone(tmp_path):
    out = tmp_path / "run"
    with staged_folder(out) as staged:
        (staged.path / "tracks.json").write_text("{}")
        assert staged.path.parent == tmp_path and staged.path.name == f".run.partial-{HOST}-{os.getpid()}"
        assert not out.exists()  # nothing visible while the run writes
        assert staged.final_name(staged.path / "tracks.json") == out / "tracks.json"
    assert _listing(tmp_path) == ["run"] and _listing(out) == ["tracks.json"]


def test_an_existing_run_is_refused_unless_overwrite_and_then_replaced_whole(tmp_path):
    out = tmp_path / "run"
    with staged_folder(out) as staged:
        (staged.path / "tracks.json").write_text("first")
        (staged.path / "annotated.mp4").write_text("first")
    with pytest.raises(OutputExistsError) as info:
        check_output(out, folder=True, overwrite_hint="--overwrite")
    assert str(info.value) == f"output folder '{out}' already exists; pass --overwrite to replace it"
    with staged_folder(out, overwrite=True) as staged:
        (staged.path / "tracks.json").write_text("second")
    assert _listing(out) == ["tracks.json"] and (out / "tracks.json").read_text() == "second"
    assert _listing(tmp_path) == ["run"]  # the old run was swapped aside and deleted


def test_an_empty_existing_folder_is_used_and_a_foreign_one_is_never_replaced(tmp_path):
    (tmp_path / "empty").mkdir()
    with staged_folder(tmp_path / "empty") as staged:
        (staged.path / "tracks.json").write_text("{}")
    assert _listing(tmp_path / "empty") == ["tracks.json"]
    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("precious")
    with pytest.raises(InputError, match="holds no vidcorr output .* refusing to replace it"):
        check_output(home, folder=True, overwrite=True)
    assert (home / "thesis.tex").read_text() == "precious"


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_any_exception_removes_the_staging_folder_and_keeps_the_old_run(tmp_path, error):
    out = tmp_path / "run"
    out.mkdir()
    (out / "tracks.json").write_text("old")
    with pytest.raises(type(error)), staged_folder(out, overwrite=True) as staged:
        (staged.path / "tracks.json").write_text("new")
        raise error
    assert _listing(tmp_path) == ["run"] and (out / "tracks.json").read_text() == "old"


def test_a_write_error_names_the_final_file_not_the_staging_name(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(OutputWriteError) as info, staged_folder(out) as staged:
        with atomic_path(staged.path / "tracks.npz"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # like zipfile: no file name
    assert str(info.value) == f"cannot write '{out / 'tracks.npz'}': No space left on device"
    assert _listing(tmp_path) == []


def test_recover_removes_dead_runs_partials_and_restores_a_run_caught_between_renames(tmp_path):
    dead, alive = _dead_pid(), os.getpid()
    out = tmp_path / "run"
    (tmp_path / f".run.partial-{HOST}-{dead}").mkdir()
    (tmp_path / f".run.partial-{HOST}-{alive}").mkdir()  # a live run: left alone
    (tmp_path / f".run.partial-otherhost-{dead}").mkdir()  # another host's: cannot tell, left alone
    (tmp_path / f".e.safetensors.partial-{HOST}-{dead}.safetensors").write_text("x")
    old = tmp_path / f".run.old-{HOST}-{dead}"
    old.mkdir()
    (old / "tracks.json").write_text("old run")
    recover(out)
    assert (out / "tracks.json").read_text() == "old run"  # died between the renames: restored
    assert (tmp_path / f".e.safetensors.partial-{HOST}-{dead}.safetensors").exists()  # another output's
    recover(tmp_path / "e.safetensors")
    assert _listing(tmp_path) == [f".run.partial-otherhost-{dead}", f".run.partial-{HOST}-{alive}", "run"]
    old.mkdir()
    recover(out)  # the swap finished but not the clean-up: the old run goes
    assert not old.exists() and (out / "tracks.json").read_text() == "old run"


def test_a_staged_file_replaces_only_with_overwrite(tmp_path):
    final = tmp_path / "e.safetensors"
    with staged_file(final) as staged:
        assert staged.name == f".e.safetensors.partial-{HOST}-{os.getpid()}.safetensors"
        staged.write_text("one")
    with pytest.raises(OutputExistsError, match=r"output file '.*e.safetensors' already exists; pass --overwrite"):
        check_output(final, folder=False, overwrite_hint="--overwrite")
    with pytest.raises(InputError, match="is a folder"):
        check_output(tmp_path, folder=False, overwrite=True)
    with pytest.raises(KeyboardInterrupt), staged_file(final, overwrite=True) as staged:
        staged.write_text("half")
        raise KeyboardInterrupt
    assert final.read_text() == "one" and _listing(tmp_path) == ["e.safetensors"]
    with staged_file(final, overwrite=True) as staged:
        staged.write_text("two")
    assert final.read_text() == "two" and _listing(tmp_path) == ["e.safetensors"]


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_atomic_writes_get_the_mode_open_would_give(tmp_path, umask):
    previous = os.umask(umask)
    try:
        assert default_file_mode() == 0o666 & ~umask
        with atomic_path(tmp_path / "e.safetensors") as tmp:
            save_file({"a": torch.zeros(2)}, str(tmp))  # safetensors itself creates 0600 files
        with open(tmp_path / "plain.txt", "w") as handle:
            handle.write("x")
    finally:
        os.umask(previous)
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert modes == {"e.safetensors": 0o666 & ~umask, "plain.txt": 0o666 & ~umask}


def _mjpg(path, frames):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (32, 24))
    for value in range(frames):
        writer.write(np.full((24, 32, 3), value * 20, np.uint8))
    writer.release()
    return path


def test_verify_written_video_catches_short_and_empty_files(tmp_path):
    path = _mjpg(tmp_path / "a.avi", 5)
    verify_written_video(path, 5)
    with pytest.raises(OSError, match=r"holds 5 readable frames of 7 \(is the disk full\?\)") as info:
        verify_written_video(path, 7)
    assert info.value.errno == errno.EIO and info.value.filename == str(path)
    (tmp_path / "b.avi").write_bytes(b"")
    with pytest.raises(OSError, match="wrote nothing"):
        verify_written_video(tmp_path / "b.avi", 3)
    half = tmp_path / "c.avi"
    half.write_bytes(path.read_bytes()[:200])
    with pytest.raises(OSError, match="cannot be read back|readable frames of 5"):
        verify_written_video(half, 5)
