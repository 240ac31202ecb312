"""Fetch the pair benchmarks from their publishers (``vidcorr eval ... --download``).

Each benchmark is one or more files at fixed URLs. A file is downloaded into ``<data-root>/<name>.part``,
resuming with an HTTP Range request where a previous attempt stopped, and renamed to ``<name>`` once
complete. An archive is then verified before anything is extracted: it must open and read to its end
(every member of a tar, every CRC of a zip), hold no path that would land outside the data root, and hold
the files the benchmark's reader needs. It is extracted into a staging folder inside the data root, its
top-level entries are moved into place, and the archive is deleted. Without network access the error is
one line naming the URL and the layout to put in place by hand.

Layouts after a download (the readers accept ``<data-root>`` or these folders):

- SPair-71k: ``<data-root>/SPair-71k/{Layout,PairAnnotation,JPEGImages,...}`` (the official tarball).
- PF-Willow: ``<data-root>/PF-WILLOW/PF-dataset/<category>/*.png`` (the official zip) and
  ``<data-root>/PF-WILLOW/test_pairs.csv``: the 900-pair list of WeakAlign/CNNGeometric
  (``test_pairs_pf.csv``), the one hpf and CATs ship as ``PF-WILLOW/test_pairs.csv``.
- CUB-200-2011: ``<data-root>/CUB_200_2011/{images.txt,parts/part_locs.txt,images/...}`` (CaltechDATA).
- JHMDB: ``<data-root>/JHMDB/{Rename_Images,joint_positions,splits}/`` (the publisher's three archives, each
  checked against the MD5 published in urs-waldmann/improving-unsupervised-label-propagation's
  ``prepare_JHMDB.py`` before it is opened).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from vidcorr.errors import DataError, InputError

DownloadProgress = Callable[[str, int, "int | None"], None]
"""progress(file name, bytes done, total bytes or None): called as a download advances."""

SPAIR_URL = "http://cvlab.postech.ac.kr/research/SPair-71k/data/SPair-71k.tar.gz"
PFWILLOW_URL = "https://www.di.ens.fr/willow/research/proposalflow/dataset/PF-dataset.zip"
PFWILLOW_PAIRS_URL = "https://www.di.ens.fr/willow/research/cnngeometric/other_resources/test_pairs_pf.csv"
CUB_URL = "https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz"
JHMDB_URL = "https://files.is.tue.mpg.de/jhmdb/"

PFWILLOW_CATEGORIES = ("car(G)", "car(M)", "car(S)", "duck(S)", "motorbike(G)", "motorbike(M)", "motorbike(S)",
                       "winebottle(M)", "winebottle(wC)", "winebottle(woC)")
_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class RemoteFile:
    """One file of a benchmark and where its content goes.

    Attributes:
        url: the publisher's URL.
        name: the download's file name inside the data root.
        kind: ``tar`` and ``zip`` are extracted into `place`; ``file`` is moved to `place`.
        place: relative to the data root: the folder an archive's top-level entries go into, or a plain
            file's final path.
        required: paths (posix, as in the archive) that must be in it; a trailing ``/`` means "some member
            under this folder". Ignored for plain files.
        md5: the publisher's MD5 of the download (hex, any case), checked before anything else; None: no check.
        installs: a path relative to the data root that exists once this file is in place (a re-run after an
            interruption skips the file); None: the benchmark's marker decides for every file.
    """

    url: str
    name: str
    kind: Literal["tar", "zip", "file"]
    place: str
    required: tuple[str, ...] = ()
    md5: str | None = None
    installs: str | None = None


@dataclass(frozen=True)
class BenchmarkSource:
    """Where a benchmark comes from, and how to tell it is in place.

    Attributes:
        benchmark: ``spair``, ``pfwillow`` or ``cub``.
        folder: its folder under the data root after a download.
        marker: the file its reader looks for in that folder (or in the data root itself).
        files: what to fetch, in order.
        layout: the layout to put in place by hand, for the offline message.
    """

    benchmark: str
    folder: str
    marker: str
    files: tuple[RemoteFile, ...]
    layout: str


SOURCES: dict[str, BenchmarkSource] = {
    "spair": BenchmarkSource(
        "spair", "SPair-71k", "Layout",
        (RemoteFile(SPAIR_URL, "SPair-71k.tar.gz", "tar", ".",
                    ("SPair-71k/Layout/large/test.txt", "SPair-71k/PairAnnotation/test/", "SPair-71k/JPEGImages/")),),
        "<data-root>/SPair-71k/ holding Layout/large/{trn,val,test}.txt, PairAnnotation/{trn,val,test}/*.json "
        "and JPEGImages/<category>/*.jpg (extract SPair-71k.tar.gz there)",
    ),
    "pfwillow": BenchmarkSource(
        "pfwillow", "PF-WILLOW", "test_pairs.csv",
        (RemoteFile(PFWILLOW_URL, "PF-dataset.zip", "zip", "PF-WILLOW",
                    tuple(f"PF-dataset/{c}/" for c in PFWILLOW_CATEGORIES)),
         RemoteFile(PFWILLOW_PAIRS_URL, "test_pairs_pf.csv", "file", "PF-WILLOW/test_pairs.csv")),
        "<data-root>/PF-WILLOW/test_pairs.csv (the file test_pairs_pf.csv, renamed) and "
        "<data-root>/PF-WILLOW/PF-dataset/<category>/*.png (unzip PF-dataset.zip there)",
    ),
    "cub": BenchmarkSource(
        "cub", "CUB_200_2011", "images.txt",
        (RemoteFile(CUB_URL, "CUB_200_2011.tgz", "tar", ".",
                    tuple(f"CUB_200_2011/{name}" for name in (
                        "images.txt", "classes.txt", "image_class_labels.txt", "train_test_split.txt",
                        "bounding_boxes.txt", "parts/part_locs.txt", "images/"))),),
        "<data-root>/CUB_200_2011/ holding images.txt, classes.txt, image_class_labels.txt, "
        "train_test_split.txt, bounding_boxes.txt, parts/part_locs.txt and images/<class>/*.jpg "
        "(extract CUB_200_2011.tgz there)",
    ),
    "jhmdb": BenchmarkSource(
        "jhmdb", "JHMDB", "splits",
        (RemoteFile(JHMDB_URL + "splits.zip", "splits.zip", "zip", "JHMDB", ("splits/",),
                    md5="15B9F2F7A99D63C07F3BE0C9ECDE43B5", installs="JHMDB/splits"),
         RemoteFile(JHMDB_URL + "joint_positions.zip", "joint_positions.zip", "zip", "JHMDB", ("joint_positions/",),
                    md5="3D1AC91BCB8544DDFDD9547997DB239F", installs="JHMDB/joint_positions"),
         RemoteFile(JHMDB_URL + "Rename_Images.tar.gz", "Rename_Images.tar.gz", "tar", "JHMDB", ("Rename_Images/",),
                    md5="23726FBAC4BC69A726DC3DAF2E7AB4C1", installs="JHMDB/Rename_Images")),
        "<data-root>/JHMDB/ holding Rename_Images/<action>/<video>/%05d.png, "
        "joint_positions/<action>/<video>/joint_positions.mat and splits/<action>_test_split1.txt (extract "
        f"{JHMDB_URL}Rename_Images.tar.gz, joint_positions.zip and splits.zip there)",
    ),
}


def is_present(benchmark: str, data_root: str | os.PathLike) -> bool:
    """True if `benchmark`'s reader would find its folder under (or at) `data_root`: its marker and, for files
    that name what they install, every one of those."""
    source = _source(benchmark)
    root = Path(data_root)
    for base in (root, root / source.folder):
        installs = [PurePosixPath(r.installs).name for r in source.files if r.installs is not None]
        if (base / source.marker).exists() and all((base / name).exists() for name in installs):
            return True
    return False


def check_md5(path: Path, remote: RemoteFile) -> None:
    """Compare a download's MD5 with the publisher's (a no-op without one).

    Raises:
        DataError: another MD5 (the message names both and says to download again).
    """
    if remote.md5 is None:
        return
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            digest.update(chunk)
    if digest.hexdigest().lower() != remote.md5.lower():
        raise DataError(f"{path}: MD5 {digest.hexdigest()}, expected {remote.md5.lower()} (a corrupt or changed "
                        "download); delete it and download again")


def _source(benchmark: str) -> BenchmarkSource:
    if benchmark not in SOURCES:
        raise InputError(f"no download for benchmark {benchmark!r}; expected one of {', '.join(SOURCES)}")
    return SOURCES[benchmark]


def _offline(url: str, reason: object, layout: str) -> DataError:
    return DataError(f"cannot download {url} ({reason}); without network, fetch it elsewhere and put in place "
                     f"{layout}")


def fetch(url: str, dest: str | os.PathLike, *, layout: str = "the file by hand",
          progress: DownloadProgress | None = None, timeout_s: float = 60.0) -> Path:
    """Download `url` to `dest`, resuming ``<dest>.part`` with an HTTP Range request; a no-op if `dest` exists.

    Raises:
        DataError: the server cannot be reached or refuses (one line naming `url` and `layout`), or the
            transfer stops early (the partial file is kept for the next attempt).
    """
    dest = Path(dest)
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "vidcorr"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # nothing left to send: the partial file is whole
            os.replace(part, dest)
            return dest
        raise _offline(url, f"HTTP {exc.code} {exc.reason}", layout) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise _offline(url, reason, layout) from None
    with response:
        if offset and getattr(response, "status", None) != 206:
            offset = 0  # the server ignored the range: start again
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length and length.isdigit() else None
        done = offset
        try:
            with part.open("ab" if offset else "wb") as handle:
                while chunk := response.read(_CHUNK_BYTES):
                    handle.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(dest.name, done, total)
        except (OSError, ValueError) as exc:
            raise DataError(f"download of {url} stopped after {done:,} bytes ({exc}); run again to resume "
                            f"from {part}") from None
    if total is not None and done < total:
        raise DataError(f"download of {url} stopped after {done:,} of {total:,} bytes; run again to resume "
                        f"from {part}")
    os.replace(part, dest)
    return dest


def _safe_name(name: str, archive: Path) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or name.startswith(("/", "\\")) or ":" in path.parts[0]:
        raise DataError(f"{archive}: refusing to extract {name!r}, a path outside the destination")
    return path


def _members(path: Path, kind: str) -> list[str]:
    """Every member name, after reading the archive to its end (which detects truncation and bad CRCs)."""
    try:
        if kind == "zip":
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
                if bad is not None:
                    raise DataError(f"{path}: corrupt archive (member {bad!r} fails its CRC); delete it and "
                                    "download again")
                return archive.namelist()
        with tarfile.open(path, "r:*") as archive:
            names = []
            for member in archive:
                if not (member.isfile() or member.isdir()):
                    raise DataError(f"{path}: refusing to extract {member.name!r}, which is not a plain file "
                                    "or folder")
                names.append(member.name)
            return names
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError) as exc:
        raise DataError(f"{path}: not a readable {kind} archive ({exc.__class__.__name__}: {exc}); delete it "
                        "and download again") from None


def verify_archive(path: str | os.PathLike, remote: RemoteFile) -> list[str]:
    """Check that `path` opens, reads to its end, stays inside its destination and holds `remote.required`.

    Returns its member names. A plain file (``kind="file"``) is checked by :func:`check_plain_file`.

    Raises:
        DataError: naming the archive and what is wrong.
    """
    path = Path(path)
    if remote.kind == "file":
        check_plain_file(path, remote)
        return [remote.name]
    names = _members(path, remote.kind)
    normal = [str(_safe_name(n, path)) + ("/" if n.endswith("/") else "") for n in names]
    for wanted in remote.required:
        if wanted.endswith("/"):
            ok = any(n.startswith(wanted) for n in normal)
        else:
            ok = wanted in normal
        if not ok:
            raise DataError(f"{path}: expected {wanted!r} in the archive, it is not there (an unexpected "
                            "release?); delete it or extract it by hand")
    return names


def check_plain_file(path: Path, remote: RemoteFile) -> None:
    """A downloaded plain file's sanity check: PF-Willow's pair list must be a 42-column csv."""
    if not remote.place.endswith("test_pairs.csv"):
        return
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable csv ({exc.__class__.__name__})") from None
    rows = [row for row in csv.reader(io.StringIO(text)) if row]
    if len(rows) < 2 or any(len(row) != 42 for row in rows[:2]):
        raise DataError(f"{path}: expected PF-Willow's pair list (a header and rows of 42 columns); delete it and "
                        "download again")


def extract_archive(path: str | os.PathLike, remote: RemoteFile, data_root: str | os.PathLike) -> Path:
    """Extract a verified archive into ``<data_root>/<remote.place>`` through a staging folder.

    Top-level entries that already exist at the destination are left as they are (a re-run after an
    interrupted install). Returns the destination folder.
    """
    path, root = Path(path), Path(data_root)
    destination = root / remote.place
    staging = root / f".vidcorr-extract-{remote.name}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        if remote.kind == "zip":
            with zipfile.ZipFile(path) as archive:
                archive.extractall(staging)
        else:
            with tarfile.open(path, "r:*") as archive:
                if hasattr(tarfile, "data_filter"):
                    archive.extractall(staging, filter="data")
                else:  # verify_archive already refused links and paths outside the destination
                    archive.extractall(staging)
        destination.mkdir(parents=True, exist_ok=True)
        for entry in sorted(staging.iterdir()):
            target = destination / entry.name
            if not target.exists():
                os.replace(entry, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return destination


def ensure_benchmark(benchmark: str, data_root: str | os.PathLike, *,
                     progress: DownloadProgress | None = None, timeout_s: float = 60.0) -> Path:
    """Download, verify and install `benchmark` under `data_root` unless it is there already.

    Returns the data root. Each step resumes where an interrupted call left off: a complete download is
    not fetched again, a partial one continues, an extracted archive is not extracted again.

    Raises:
        DataError: offline (one line: the URL and the layout to put in place by hand), an interrupted
            transfer, or an archive that fails verification.
    """
    source = _source(benchmark)
    root = Path(data_root)
    if is_present(benchmark, root):
        return root
    root.mkdir(parents=True, exist_ok=True)
    for remote in source.files:
        final = root / remote.place
        installed = remote.installs is not None and (root / remote.installs).exists()
        if installed or (remote.kind == "file" and final.exists()):
            continue
        downloaded = fetch(remote.url, root / remote.name, layout=source.layout, progress=progress,
                           timeout_s=timeout_s)
        check_md5(downloaded, remote)
        verify_archive(downloaded, remote)
        if remote.kind == "file":
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(downloaded, final)
        else:
            extract_archive(downloaded, remote, root)
            downloaded.unlink()
    if not is_present(benchmark, root):
        raise DataError(f"{root}: the downloads did not produce {source.folder}/{source.marker}; put in place "
                        f"{source.layout}")
    return root
