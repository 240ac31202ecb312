"""The `vidcorr` command.

OpenMP threads sleep instead of spinning while they wait (vidcorr/threads.py measures why). torch's
libgomp reads OMP_WAIT_POLICY once, when torch is first imported, so it is set here, before any
command module imports the library; a value the user set is kept. This cannot import
vidcorr.threads (the vidcorr package imports torch), so it restates its one default.
"""

import os

if not os.environ.get("OMP_WAIT_POLICY", "").strip():
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
