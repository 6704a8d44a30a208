"""The load generator of test_load.py and bench/load_isolation.py, run as its own (niced) process:

    python -m tests.faults.load_client ADDRESS TASK_ID TEMPLATE.bin

Prints one JSON object: what every watcher saw, the tasks it created, the load window.
Keeping it out of the test process (and at nice 10) keeps its CPU from being
counted as the daemon's cost to training on a small host. Also the training task
the load runs beside (SLOW) and how its steps are read back (loss_points, step_rate),
shared by the test and the benchmark.
"""
from __future__ import annotations

import asyncio
import json
import random
import sys
import time

import grpc
from modx.v1 import common_pb2 as C
from modx.v1 import training_pb2_grpc
from modx.v1 import training_pb2 as T

READERS, SLOW_READERS, IDLE = 150, 20, 30  # = 200 watchers
CLIENTS, CREATES_PER_CLIENT = 50, 2
STORM_ROUNDS, STORM_SIZE = 8, 25
LOAD_SECONDS = 6.0
# The training task under load (test_load.py and bench/load_isolation.py): a metrics event every 4 steps,
# a realistic event rate for a model this tiny (real steps take longer).
SLOW = dict(num_train_epochs=100, per_device_train_batch_size=1, gradient_accumulation_steps=1, logging_steps=4,
            max_seq_length=64, save_steps=100_000)


def loss_points(d, task_id: str, t0: float = 0.0, t1: float = float("inf")) -> list[tuple[int, float]]:
    """(step, worker time) of every logged training loss with t0 <= time <= t1, in step order."""
    points = d.training.ListMetrics(T.ListMetricsRequest(task_id=task_id, page=C.PageRequest(page_size=10_000))).points
    out = [(p.step, p.time.ToNanoseconds() / 1e9) for p in points if p.HasField("loss")]
    return [(step, t) for step, t in out if t0 <= t <= t1]


def step_rate(d, task_id: str, t0: float, t1: float) -> tuple[float, float]:
    """Training steps per second between t0 and t1, and the longest gap between logged steps (bench only:
    speeds and gaps are measurements, not test assertions)."""
    points = loss_points(d, task_id, t0, t1)
    assert len(points) >= 3, f"only {len(points)} steps between {t0} and {t1}"
    (first, t_first), (last, t_last) = points[0], points[-1]
    return (last - first) / (t_last - t_first), max(b[1] - a[1] for a, b in zip(points, points[1:]))


async def run_load(address: str, task_id: str, req_template: T.CreateTaskRequest) -> dict:
    channels = [grpc.aio.insecure_channel(address) for _ in range(12)]
    stubs = [training_pb2_grpc.TrainingServiceStub(ch) for ch in channels]
    results: dict = {"readers": [], "slow": [], "created": [], "storm_events": 0, "errors": []}

    async def reader(stub, pause: float, out: list) -> None:
        seqs = []
        call = stub.WatchTask(T.WatchTaskRequest(task_id=task_id), timeout=120)
        if pause:
            await asyncio.sleep(pause)
        async for response in call:
            seqs.append((response.event.seq, response.event.WhichOneof("payload"),
                         response.event.state_change.to_state if response.event.HasField("state_change") else 0))
        out.append(seqs)

    async def client(stub, n: int) -> None:
        for i in range(CREATES_PER_CLIENT):
            await stub.ListTasks(T.ListTasksRequest(page=C.PageRequest(page_size=20)), timeout=60)
            await stub.GetTask(T.GetTaskRequest(task_id=task_id), timeout=60)
            req = T.CreateTaskRequest()
            req.CopyFrom(req_template)
            req.name = f"load-{n}-{i}"
            # each task needs an output dir of its own (an output dir in use by another task is refused)
            req.params["output_dir"].string_value += f"-{n}-{i}"
            created = await stub.CreateTask(req, timeout=60)
            results["created"].append(created.task.id)
            await asyncio.sleep(random.random() * 0.5)

    async def storm(stub) -> None:
        for _ in range(STORM_ROUNDS):
            calls = [stub.WatchTask(T.WatchTaskRequest(task_id=task_id, after_seq=random.randint(0, 50)))
                     for _ in range(STORM_SIZE)]
            for call in calls:
                try:
                    if random.random() < 0.5:
                        await asyncio.wait_for(call.read(), 5)
                        results["storm_events"] += 1
                except (asyncio.TimeoutError, grpc.RpcError):
                    pass
                call.cancel()
            await asyncio.sleep(0.1)

    pick = lambda i: stubs[i % len(stubs)]  # noqa: E731
    idle_calls = [pick(i).WatchTask(T.WatchTaskRequest(task_id=task_id)) for i in range(IDLE)]
    watchers = [asyncio.create_task(reader(pick(i), 0, results["readers"])) for i in range(READERS)]
    watchers += [asyncio.create_task(reader(pick(i), LOAD_SECONDS, results["slow"])) for i in range(SLOW_READERS)]
    t0 = time.time()
    work = [asyncio.create_task(client(pick(i), i)) for i in range(CLIENTS)]
    work += [asyncio.create_task(storm(pick(i))) for i in range(2)]
    _, unfinished = await asyncio.wait(work, timeout=LOAD_SECONDS)  # the load window
    results["load_window"] = (t0, time.time())
    results["clients_unfinished"] = len(unfinished)
    for task in unfinished:
        task.cancel()  # a create cancelled in flight may or may not be stored, never twice
    await asyncio.gather(*unfinished, return_exceptions=True)
    await stubs[0].StopTask(T.StopTaskRequest(task_id=task_id), timeout=60)
    await asyncio.wait_for(asyncio.gather(*watchers), 90)  # every stream ends with the terminal event
    log(f"watchers done after {time.time() - t0:.1f}s")
    for call in idle_calls:
        call.cancel()
    for ch in channels:
        await ch.close()
    return results


def log(message: str) -> None:
    print(f"load_client: {message}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    address, task_id, template_path = argv
    template = T.CreateTaskRequest.FromString(open(template_path, "rb").read())
    sys.stdin.readline()  # started early (imports done), the test says "go" when its baseline is measured
    results = asyncio.run(run_load(address, task_id, template))
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
