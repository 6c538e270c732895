"""The psutil source (macOS, and any OS psutil knows), run here on this machine: what
psutil cannot say is None, never a guess."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

psutil = pytest.importorskip("psutil")

from core.live import LiveError, open_source, to_json_document  # noqa: E402
from core.live.generic import PsutilSource  # noqa: E402


def test_this_process_and_a_child():
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                             stdin=subprocess.PIPE)
    try:
        source = PsutilSource()
        source.sample()
        threading.Event().wait(0.1)
        snap = source.sample()
    finally:
        child.stdin.close()
        child.wait()
    me = snap.find(os.getpid())
    assert me.ppid == os.getppid() and me.readable
    assert me.key == (os.getpid(), round(psutil.Process().create_time() * 1e6))
    assert {t.tid for t in me.threads} >= {threading.get_native_id()}
    t = me.threads[0]
    assert t.state is None and t.priority is None and t.cpu is None  # psutil has none
    assert t.user_time_s is not None and t.context_switches is None
    assert me.native["voluntary_switches"] is not None
    assert snap.find(child.pid).ppid == os.getpid()
    assert snap.interval_s is not None and len(snap.cpu_usage) == snap.cpus
    doc = to_json_document(snap)
    assert any(p["pid"] == child.pid for p in doc["processes"])


def test_open_source_choices():
    assert isinstance(open_source("psutil"), PsutilSource)
    with pytest.raises(LiveError, match="unknown live source"):
        open_source("dtrace")
    if sys.platform != "win32":
        with pytest.raises(LiveError, match="Windows only"):
            open_source("ntquery")
