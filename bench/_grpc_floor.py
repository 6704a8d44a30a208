"""gRPC's own cost of a fan-out, the floor under the daemon's cost per watcher.

A bare ``grpc.aio`` server (uvloop, a Unix socket, as modxd runs) streams one fixed message of a
given size to N clients at a given rate, and does nothing else: no store, no event bus, no modx
code. Its CPU share is what any Python gRPC service pays to send those messages, so the daemon's
share above it is modx's own.
"""
from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path
from typing import Any

_METHOD = "/bench.Floor/Stream"


def _server(address: str, clients: int, rate: float, seconds: float, size: int, cpu: int | None, conn: Any) -> None:
    import grpc

    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    subscribers: set[asyncio.Queue] = set()

    async def stream(request: bytes, context: Any) -> Any:
        queue: asyncio.Queue = asyncio.Queue()
        subscribers.add(queue)
        try:
            while (item := await queue.get()) is not None:
                yield item
        finally:
            subscribers.discard(queue)

    async def main() -> float:
        server = grpc.aio.server()
        handler = grpc.unary_stream_rpc_method_handler(stream, lambda b: b, lambda b: b)
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.Floor", {"Stream": handler}),))
        server.add_insecure_port(address)
        await server.start()
        conn.send("listening")
        while len(subscribers) < clients:
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)
        message = b"m" * size
        cpu0, start = time.process_time(), time.monotonic()
        tick = start
        while tick - start < seconds:
            for queue in list(subscribers):
                queue.put_nowait(message)
            tick += 1.0 / rate
            await asyncio.sleep(max(0.0, tick - time.monotonic()))
        share = (time.process_time() - cpu0) / (time.monotonic() - start)
        for queue in list(subscribers):
            queue.put_nowait(None)
        for _ in range(100):  # every stream has ended cleanly before the server goes
            if not subscribers:
                break
            await asyncio.sleep(0.05)
        await server.stop(2)
        return share

    try:
        import uvloop
        conn.send(uvloop.run(main()))
    except ImportError:
        conn.send(asyncio.run(main()))


def _clients(address: str, count: int, cpu: int | None, options: list[tuple[str, Any]]) -> None:
    import grpc

    if cpu is not None:
        os.sched_setaffinity(0, {cpu})

    async def one() -> None:
        async with grpc.aio.insecure_channel(address, options=options) as channel:
            call = channel.unary_stream(_METHOD, request_serializer=lambda b: b, response_deserializer=lambda b: b)(b"")
            async for _ in call:
                pass

    async def main() -> None:
        await asyncio.gather(*(one() for _ in range(count)))

    asyncio.run(main())


def fanout_cpu_share(clients: int, rate: float, size: int, seconds: float = 20.0,
                     cpus: list[int] | None = None, client_options: list[tuple[str, Any]] | None = None) -> float:
    """CPU of a bare gRPC server sending `rate` messages of `size` bytes a second to each of `clients`
    streams, as a share of one core. With `cpus`, the server runs on cpus[0] and the clients, in two
    processes, on one CPU each (as the overhead benchmark places its watchers). `client_options` are
    the clients' channel arguments (the watchers', so both pay for the same HTTP/2 traffic)."""
    options = [("grpc.use_local_subchannel_pool", 1)] + list(client_options or [])
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="modx-floor-") as tmp:
        address = f"unix://{Path(tmp) / 'floor.sock'}"
        parent, child = ctx.Pipe()
        server = ctx.Process(target=_server, name="modx-bench-floor",
                             args=(address, clients, rate, seconds, size, cpus[0] if cpus else None, child))
        server.start()
        if not parent.poll(60) or parent.recv() != "listening":
            server.kill()
            raise RuntimeError("the bare gRPC server did not start")
        halves = [clients // 2, clients - clients // 2]
        procs = [ctx.Process(target=_clients, name=f"modx-bench-floor-clients-{k}",
                             args=(address, n, cpus[k % len(cpus)] if cpus else None, options))
                 for k, n in enumerate(halves) if n]
        for proc in procs:
            proc.start()
        try:
            if not parent.poll(seconds + 120):
                raise RuntimeError("the bare gRPC server did not finish")
            share = float(parent.recv())
        finally:
            server.join(10)
            for proc in procs:
                proc.join(10)
                if proc.is_alive():
                    proc.kill()
            if server.is_alive():
                server.kill()
        return share


if __name__ == "__main__":
    import sys

    n, r = (int(sys.argv[1]), float(sys.argv[2])) if len(sys.argv) > 2 else (50, 5.5)
    print(f"{n} clients at {r:g}/s: {100 * fanout_cpu_share(n, r, 120, 15):.2f} % of a core")
