"""The devices parameter, its checks against the host, and how the scheduler reserves slots (pure Python)."""
from __future__ import annotations

import re

import pytest

from modxd import params as P
from modxd import placement as PL
from modxd.worker.launch import describe_group_failure, torchrun_command
from modxd.plan import estimate_total_steps
from modxd.errors import FailedPrecondition, InvalidArgument

GPUS = ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]
BASE = {"train_file": "/a", "output_dir": "/b", "model_dir": "/c"}


@pytest.mark.parametrize("text, expected", [
    ("1", PL.DeviceRequest(count=1)), ("", PL.DeviceRequest(count=1)), (" 4 ", PL.DeviceRequest(count=4)),
    ("auto", PL.DeviceRequest(auto=True)), ("0,1", PL.DeviceRequest(ids=("cuda:0", "cuda:1"))),
    ("cuda:2, cuda:3", PL.DeviceRequest(ids=("cuda:2", "cuda:3"))), ("cpu", PL.DeviceRequest(ids=("cpu",))),
])
def test_devices_syntax(text: str, expected: PL.DeviceRequest) -> None:
    assert PL.parse_devices(text) == expected


@pytest.mark.parametrize("text, fragment", [
    ("0", "count between 1 and"), ("two", "must be auto, a count"), ("0,0", "names a device twice"),
    ("cpu,0", "cannot mix cpu"), ("cuda:x", "must be auto, a count"),
])
def test_bad_devices_are_refused_with_the_parameter_named(text: str, fragment: str) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(fragment)):
        P.resolve("sft", {}, {**BASE, "devices": text})


def test_distribution_parameters_resolve() -> None:
    out = P.resolve("pretrain", {}, {**BASE, "devices": 2, "distributed_strategy": "fsdp", "nnodes": "2",
                                     "rdzv_endpoint": "node0.example:29500"})
    assert (out["devices"], out["distributed_strategy"], out["nnodes"]) == ("2", "fsdp", 2)
    assert P.defaults_for("sft")["devices"] == "1" and P.defaults_for("sft")["distributed_strategy"] == "ddp"
    with pytest.raises(InvalidArgument, match="nnodes above 1 needs rdzv_endpoint"):
        P.resolve("sft", {}, {**BASE, "nnodes": "2"})
    with pytest.raises(InvalidArgument, match="rdzv_endpoint must be host:port"):
        P.resolve("sft", {}, {**BASE, "rdzv_endpoint": "node0"})
    with pytest.raises(InvalidArgument, match="distributed_strategy must be one of ddp, fsdp"):
        P.resolve("sft", {}, {**BASE, "distributed_strategy": "zero9"})


def test_checks_against_the_host() -> None:
    assert PL.check_task({"devices": "2"}, GPUS, cpu_count=2) == 2
    assert PL.check_task({"devices": "auto", "nnodes": 3}, GPUS, cpu_count=2) == 12
    assert PL.check_task({"devices": "2"}, ["cpu"], cpu_count=2) == 2  # two gloo processes on the CPU
    assert PL.check_task({"devices": "auto"}, ["cpu"], cpu_count=2) == 1
    with pytest.raises(FailedPrecondition, match=r"asks for 8 devices but this host has 4 training GPU\(s\)"):
        PL.check_task({"devices": "8"}, GPUS, cpu_count=2)
    with pytest.raises(FailedPrecondition, match="asks for cuda:7, which this daemon does not train on"):
        PL.check_task({"devices": "0,7"}, GPUS, cpu_count=2)
    with pytest.raises(FailedPrecondition, match="asks for cuda:0, which this daemon does not train on"):
        PL.check_task({"devices": "cuda:0"}, ["cpu"], cpu_count=2)
    with pytest.raises(FailedPrecondition, match="3 processes on the CPU but this host has 2 CPU core"):
        PL.check_task({"devices": "3"}, ["cpu"], cpu_count=2)
    with pytest.raises(InvalidArgument, match="merge_lora_after_training is not available with distributed_strategy"):
        PL.check_task({"devices": "2", "distributed_strategy": "fsdp", "merge_lora_after_training": True}, GPUS,
                      cpu_count=2)
    # One device: fsdp is simply not used, merging stays possible.
    assert PL.check_task({"devices": "1", "distributed_strategy": "fsdp", "merge_lora_after_training": True},
                         GPUS, cpu_count=2) == 1


def test_the_scheduler_reserves_every_slot_or_none() -> None:
    two = PL.parse_devices("2")
    assert PL.place(two, GPUS, set()) == PL.Placement(("cuda:0", "cuda:1"), ("cuda:0", "cuda:1"))
    assert PL.place(two, GPUS, {"cuda:0", "cuda:2"}).slots == ("cuda:1", "cuda:3")
    assert PL.place(two, GPUS, {"cuda:0", "cuda:1", "cuda:2"}) is None  # waits: never half a task
    assert PL.place(PL.parse_devices("2,3"), GPUS, {"cuda:0"}).slots == ("cuda:2", "cuda:3")
    assert PL.place(PL.parse_devices("2,3"), GPUS, {"cuda:3"}) is None
    assert PL.place(PL.parse_devices("auto"), GPUS, set()).slots == tuple(GPUS)
    assert PL.place(PL.parse_devices("auto"), GPUS, {"cuda:1"}) is None
    # One device keeps the old behaviour: any free slot in the configured order.
    assert PL.place(PL.parse_devices("1"), ["cuda:0", "cpu"], {"cuda:0"}).slots == ("cpu",)
    # On a CPU host, N processes share the one cpu slot; a second task waits for it.
    cpu = PL.place(two, ["cpu"], set())
    assert cpu == PL.Placement(("cpu",), ("cpu", "cpu")) and cpu.label == "cpu x2"
    assert PL.place(PL.parse_devices("1"), ["cpu"], {"cpu"}) is None
    assert PL.Placement(("cuda:0", "cuda:1"), ("cuda:0", "cuda:1")).label == "cuda:0,cuda:1"


def test_steps_and_quota_count_every_rank() -> None:
    # 32 examples, 4 per device, no accumulation: 8 steps on one device, 4 on two, 2 on two hosts of two.
    assert [estimate_total_steps(32, 4, 1, 1, world) for world in (1, 2, 4)] == [8, 4, 2]


class _Failure:
    def __init__(self, exitcode: int, timestamp: int, pid: int = 7) -> None:
        self.exitcode, self.timestamp, self.pid, self.signal = exitcode, timestamp, pid, 0


def test_the_failed_rank_is_named(tmp_path) -> None:
    errors = tmp_path / "errors"
    errors.mkdir()
    # rank 0 lost its peer after rank 1 was killed; rank 2 was stopped by the launcher.
    (errors / "rank-0.json").write_text(
        '{"rank": 0, "time": 2.0, "error": "RuntimeError: Connection closed by peer [127.0.0.1]:1234",'
        ' "traceback": ""}')
    reason, lines = describe_group_failure(str(tmp_path), {0: _Failure(1, 5), 1: _Failure(-9, 3),
                                                           2: _Failure(-15, 4)}, 3)
    assert "rank 1 of 3 (pid 7) was killed by signal SIGKILL" in reason, reason
    assert any("Connection closed by peer" in line for line in lines)
    (errors / "rank-2.json").write_text('{"rank": 2, "time": 1.0, "error": "OutOfMemoryError: CUDA out of memory"}')
    reason, _ = describe_group_failure(str(tmp_path), {}, 3)
    assert reason.startswith("distributed training failed: rank 2 of 3: OutOfMemoryError"), reason


def test_the_other_hosts_run_torchrun() -> None:
    spec = {"nnodes": 2, "nproc_per_node": 4, "rdzv_endpoint": "node0:29500", "run_id": "t-1", "run_dir": "/s/o"}
    assert torchrun_command(spec, 1) == [
        "python", "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=4", "--node-rank=1",
        "--master-addr=node0", "--master-port=29500", "--rdzv-id=t-1", "-m", "modxd.worker.rank",
        "/s/o/run.json"]
