"""Children die with their supervisor, also when it died before the child's prctl ran."""

from __future__ import annotations

import os
import subprocess
import sys

from kubelite.process import die_with


def test_child_whose_parent_is_already_gone_ends_itself() -> None:
    # a pid that is not our parent stands for "up died between fork and prctl": the child must not run on
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], preexec_fn=die_with(1))
    assert p.wait(10) < 0


def test_child_of_a_live_parent_runs() -> None:
    p = subprocess.run([sys.executable, "-c", "print('ran')"], preexec_fn=die_with(os.getpid()),
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and p.stdout == "ran\n"
