"""One rule for safe file names (before the merge, run folders and batches each had theirs)."""

import pytest

from vidcorr.io.names import RUN_ENTRIES, TRACKS_CSV, TRACKS_JSON, TRACKS_NPZ, safe_name


@pytest.mark.parametrize(("text", "expected"), [
    ("000001-2008_002719-2008_004100:aeroplane", "000001-2008_002719-2008_004100_aeroplane"),  # an SPair pair id
    ("bear", "bear"),
    ("a::b c", "a_b_c"),  # runs collapse (the run folders' old rule gave "a__b_c")
    ("../etc/passwd", "etc_passwd"),  # never a parent folder or a hidden file
    ("..", "item"),
    ("", "item"),
    ("-rf", "rf"),
    ("été", "t"),
])
def test_safe_name(text, expected):
    assert safe_name(text) == expected


def test_the_fallback_names_what_it_stands_for():
    assert safe_name("...", "video") == "video"


def test_overwrite_recognises_every_tracks_file():
    assert {TRACKS_NPZ, TRACKS_CSV, TRACKS_JSON} == {"tracks.npz", "tracks.csv", "tracks.json"}
    assert {TRACKS_NPZ, TRACKS_CSV, TRACKS_JSON} <= RUN_ENTRIES
