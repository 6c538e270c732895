"""Linux cgroups read as jobs: mount tables, membership, v1 and v2 limit files (on trees
this test writes), and, where the test may create one, a real cgroup with a limit."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from core.live.cgroups import (
    CgroupReader,
    Hierarchy,
    parse_cpu_list,
    parse_membership,
    parse_mountinfo,
)

MOUNTINFO = """\
22 1 0:21 / /proc rw,nosuid - proc proc rw
31 23 0:28 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 /docker/ab12 /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified\\040tree rw,relatime - cgroup2 cgroup2 rw,nsdelegate
"""


def test_parse_mountinfo():
    hs = parse_mountinfo(MOUNTINFO)
    assert [(h.version, h.label, h.root, h.mountpoint) for h in hs] == [
        (1, "cpu,cpuacct", "/", "/sys/fs/cgroup/cpu,cpuacct"),
        (1, "memory", "/docker/ab12", "/sys/fs/cgroup/memory"),
        (1, "", "/", "/sys/fs/cgroup/systemd"),
        (2, "", "/", "/sys/fs/cgroup/unified tree"),
    ]


def test_directory_of_a_path_seen_through_a_partial_mount():
    h = Hierarchy(1, frozenset({"memory"}), "/docker/ab12", "/sys/fs/cgroup/memory")
    assert h.directory("/docker/ab12") == "/sys/fs/cgroup/memory"
    assert h.directory("/docker/ab12/sub") == "/sys/fs/cgroup/memory/sub"
    assert h.directory("/docker/ab123") is None and h.directory("/other") is None


def test_parse_membership_drops_named_hierarchies():
    text = "12:pids:/user.slice\n4:cpu,cpuacct:/a\n1:name=systemd:/user.slice\n0::/app.scope\n"
    assert parse_membership(text) == [(12, frozenset({"pids"}), "/user.slice"),
                                      (4, frozenset({"cpu", "cpuacct"}), "/a"),
                                      (0, frozenset(), "/app.scope")]


def test_parse_cpu_list():
    assert parse_cpu_list("0-3,8,10-11\n") == (0, 1, 2, 3, 8, 10, 11)
    assert parse_cpu_list("") is None and parse_cpu_list("x") is None


def write(directory, **files):
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name.replace("__", ".")).write_text(text + "\n")


def test_v2_jobs_nest_and_map_their_limits(tmp_path):
    write(tmp_path / "app.slice", pids__max="max", memory__max="max", cpu__max="max 100000")
    write(tmp_path / "app.slice" / "web.scope", pids__max="64", pids__current="5",
          cpu__max="50000 100000", cpuset__cpus="0-1", memory__max="268435456",
          memory__current="1000", cpu__stat="usage_usec 900\nuser_usec 600\nsystem_usec 300")
    reader = CgroupReader(hierarchies=[Hierarchy(2, frozenset(), "/", str(tmp_path))])
    assert reader.jobs_of(b"0::/app.slice/web.scope\n") == ("/app.slice/web.scope",
                                                           "/app.slice")
    assert reader.jobs_of(b"0::/\n") == ()  # the root cgroup is no job
    inner, outer = sorted(reader.read_jobs({"/app.slice/web.scope": 3, "/app.slice": 3},
                                           ncpu=4), key=lambda j: -len(j.name))
    assert inner.parent == "/app.slice" and outer.parent is None
    assert inner.active_processes == 3
    assert inner.limits == {"active_process": 64, "cpu_rate": {"hard_cap": 1250},
                            "affinity": [0, 1], "job_memory": 268435456}
    assert inner.total_user_time_us == 600.0 and inner.total_kernel_time_us == 300.0
    assert inner.native["pids.current"] == "5" and inner.native["cpu.max"] == "50000 100000"
    assert outer.limits == {}


def test_v1_jobs_are_named_by_hierarchy(tmp_path):
    write(tmp_path / "pids" / "build", pids__max="100", pids__current="4")
    write(tmp_path / "cpu" / "build", cpu__cfs_quota_us="200000", cpu__cfs_period_us="100000",
          cpu__shares="1024")
    write(tmp_path / "memory" / "build", memory__limit_in_bytes="9223372036854771712",
          memory__usage_in_bytes="4096")
    reader = CgroupReader(hierarchies=[
        Hierarchy(1, frozenset({"pids"}), "/", str(tmp_path / "pids")),
        Hierarchy(1, frozenset({"cpu"}), "/", str(tmp_path / "cpu")),
        Hierarchy(1, frozenset({"memory"}), "/", str(tmp_path / "memory")),
    ])
    names = reader.jobs_of(b"3:pids:/build\n2:cpu:/build\n1:memory:/build\n")
    assert names == ("pids:/build", "cpu:/build", "memory:/build")
    jobs = {j.name: j for j in reader.read_jobs(dict.fromkeys(names, 1), ncpu=8)}
    assert jobs["pids:/build"].limits == {"active_process": 100}
    assert jobs["cpu:/build"].limits == {"cpu_rate": {"hard_cap": 2500}}  # 2 of 8 CPUs
    assert jobs["memory:/build"].limits == {}  # v1's "unlimited"
    assert jobs["memory:/build"].native["memory.usage_in_bytes"] == "4096"


def test_a_job_outside_the_mounted_part_is_unreadable(tmp_path):
    reader = CgroupReader(hierarchies=[Hierarchy(2, frozenset(), "/inner", str(tmp_path))])
    reader.jobs_of(b"0::/elsewhere\n")
    [job] = reader.read_jobs({"/elsewhere": 1}, ncpu=1)
    assert job.native == {"path": "/elsewhere", "readable": False} and job.limits == {}


PIDS_ROOT = "/sys/fs/cgroup/pids"


@pytest.mark.skipif(not (sys.platform.startswith("linux") and os.path.isdir(PIDS_ROOT)
                         and os.access(PIDS_ROOT, os.W_OK)),
                    reason="needs a writable cgroup v1 pids hierarchy")
def test_real_cgroup_is_a_job_with_its_limit():
    from core.live.linux import LinuxSource

    group = os.path.join(PIDS_ROOT, f"koi-test-{os.getpid()}")
    os.mkdir(group)
    child = subprocess.Popen(["sleep", "30"])
    try:
        with open(os.path.join(group, "pids.max"), "w") as f:
            f.write("7")
        with open(os.path.join(group, "cgroup.procs"), "w") as f:
            f.write(str(child.pid))
        with LinuxSource() as source:
            snap = source.sample()
        name = f"pids:/koi-test-{os.getpid()}"
        p = snap.find(child.pid)
        assert name in p.jobs
        job = next(j for j in snap.jobs if j.name == name)
        assert job.limits == {"active_process": 7} and job.active_processes == 1
        assert job.native["pids.current"] == "1"
    finally:
        child.kill()
        child.wait()
        os.rmdir(group)
