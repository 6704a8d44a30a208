"""A rank destroys its process group before its interpreter exits (``engine.distributed.shutdown``).

The defect (seen once in a clean-clone run of tests/distributed; 3 of 66 runs of a bare two-rank
gloo program under the launcher, without destroy_process_group, here): a rank that ended normally died with "terminate called without an active
exception" (SIGABRT), so the launcher reported the group as failed. A core dump showed why: the
main thread was finalizing the interpreter while a gloo worker thread (``ProcessGroupGloo::runLoop``)
destroyed the last collective's work item; freeing its tensors needs the GIL, a thread that asks
for the GIL during finalization is ended with ``pthread_exit``, and that forced unwind through
``noexcept`` C++ frames calls ``std::terminate``.

These tests make that instant certain instead of rare. Rank 0 leaves an all-reduce in flight
(only the process group's work item holds its tensor) and holds the GIL, with no thread switch and
no system call, while rank 1 joins the all-reduce and until rank 0's own copy of the result is in
place (it reads the tensor's memory): rank 0's gloo thread then waits for the GIL to free the
tensor, and still waits when the interpreter begins to finalize. The ranks hand over through a
shared memory byte and the tensor's memory; the one wait on time is the half second rank 0 gives
its gloo thread between writing the result and releasing the work item (a few C++ statements).
Both run under torch's elastic launcher with modx's launch configuration, as in a daemon's
training worker.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

RANK = '''
import ctypes, mmap, sys, time
import torch
import torch.distributed as dist
from modxd.engine.distributed import shutdown

with open(sys.argv[1], "r+b") as f:
    spinning = mmap.mmap(f.fileno(), 1)  # byte 0 becomes 1 once rank 0 holds the GIL
dist.init_process_group("gloo")
rank = dist.get_rank()
tensor = torch.ones(1000)
if rank == 1:
    while spinning[0] == 0:
        time.sleep(0.01)
    dist.all_reduce(tensor)
    if sys.argv[2] == "shutdown":
        shutdown()
    sys.exit(0)  # (without shutdown, rank 1 itself sometimes dies the same way)
result = ctypes.c_float.from_address(tensor.data_ptr() + 999 * 4)  # no reference to the tensor
work = dist.all_reduce(tensor, async_op=True)
del tensor, work  # only the process group's work item holds the tensor now
sys.setswitchinterval(1000)  # hold the GIL: no switch, and below no system call
spinning[0] = 1
if sys.argv[2] == "shutdown":
    shutdown()  # waits for the all-reduce, its thread frees the tensor, then ends
else:
    while result.value != 2.0:
        pass
    end = time.monotonic() + 0.5  # from writing the result to releasing the work: a few C++ statements
    while time.monotonic() < end:
        pass
'''


def run_two_ranks(tmp_path: Path, mode: str) -> dict:
    """Launch two ranks of the script above; returns the launcher's failures by rank ({} when none)."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import elastic_launch

    from modxd.worker.launch import _free_port, _launch_config

    script = tmp_path / "rank.py"
    script.write_text(RANK)
    (tmp_path / "spinning").write_bytes(b"\0")
    spec = {"nnodes": 1, "nproc_per_node": 2, "run_id": f"exit-{mode}", "rdzv_endpoint": f"127.0.0.1:{_free_port()}"}
    try:
        elastic_launch(_launch_config(spec, 0, str(tmp_path / "logs")), sys.executable)(
            str(script), str(tmp_path / "spinning"), mode)
    except ChildFailedError as exc:
        return exc.failures
    return {}


def test_a_rank_that_destroys_its_group_exits_cleanly(tmp_path: Path) -> None:
    assert run_two_ranks(tmp_path, "shutdown") == {}


def test_without_it_the_same_exit_aborts(tmp_path: Path) -> None:
    """The control: the scenario above really is the defect. If a later torch stops aborting here,
    this fails, and `shutdown` (a cheap, correct teardown either way) could be reconsidered."""
    failures = run_two_ranks(tmp_path, "exit")
    assert failures, "the ranks exited cleanly without destroying their process group"
    # SIGABRT from std::terminate: rank 0 always; rank 1, when its own exit loses the same race first
    # (the launcher then stops rank 0 with SIGTERM).
    assert any(failure.exitcode == -6 for failure in failures.values()), failures


@pytest.fixture(autouse=True)
def _rank_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ranks import modxd (they inherit this process's PYTHONPATH) and use one thread each."""
    import modxd

    daemon_dir = str(Path(modxd.__file__).resolve().parents[1])
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if daemon_dir not in paths:
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join([daemon_dir, *paths]))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
