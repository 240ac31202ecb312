"""vidcorr.progress.PlainProgress: throttled one-line progress for logs, driven by a fake clock."""

from vidcorr.progress import PlainProgress, format_duration


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_lines_at_start_every_tenth_and_at_the_end_with_rate_and_eta():
    clock, lines = Clock(), []
    progress = PlainProgress(lines.append, {"track": "tracking (frames)"}, every_s=1000.0, clock=clock)
    for done in range(1, 101):
        progress("track", done, 100)
        clock.now += 0.5  # 2 frames/s
    assert len(lines) == 11  # first report, then 10 %, 20 %, ..., 100 %
    assert lines[0] == "tracking (frames): 1/100 (1 %)"
    # 10 frames done, 9 of them in 4.5 s since the first report: 2 frames/s, 90 to go.
    assert lines[1] == "tracking (frames): 10/100 (10 %), 2.00/s, ETA 45 s"
    assert lines[-1] == "tracking (frames): 100/100 (100 %), 2.00/s"


def test_time_throttle_between_fractions_and_a_restarted_stage():
    clock, lines = Clock(), []
    progress = PlainProgress(lines.append, every_s=10.0, every_fraction=1.0, clock=clock)
    for done in range(1, 1001):
        progress("fit", done, 1000)
        clock.now += 1.0  # 1 step/s: a line every 10 s
    assert len(lines) == 1 + 99 + 1  # the first report, every 10 s from it (11, 21, ..., 991), the last
    assert lines[1] == "fit: 11/1000 (1 %), 1.00/s, ETA 16 min"
    assert lines[-1] == "fit: 1000/1000 (100 %), 1.00/s"
    lines.clear()
    progress("fit", 1, 5)  # a new run of the stage (another reference frame)
    assert lines == ["fit: 1/5 (20 %)"]


def test_stages_are_throttled_separately():
    clock, lines = Clock(), []
    progress = PlainProgress(lines.append, every_s=1e9, every_fraction=0.5, clock=clock)
    for stage in ("fit", "render"):
        for done in (1, 2, 3, 4):
            clock.now += 1.0
            progress(stage, done, 4)
    assert lines == ["fit: 1/4 (25 %)", "fit: 2/4 (50 %), 1.00/s, ETA 2 s", "fit: 4/4 (100 %), 1.00/s",
                     "render: 1/4 (25 %)", "render: 2/4 (50 %), 1.00/s, ETA 2 s", "render: 4/4 (100 %), 1.00/s"]


def test_format_duration():
    assert [format_duration(s) for s in (42, 720, 3.5 * 3600)] == ["42 s", "12 min", "3.5 h"]
