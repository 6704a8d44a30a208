"""Rank-side pieces of a distributed run: one training process per device.

The launcher (``torch.distributed``'s elastic agent, see ``worker/launch.py``) starts every
rank with ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and ``MASTER_ADDR``/``MASTER_PORT`` in its
environment; ``transformers.Trainer`` (through accelerate) sees them, joins the process group
and wraps the model in DDP or FSDP. What modx adds on top, used by ``engine/train.py``:

* :func:`training_args_extra`: the ``TrainingArguments`` of the strategy (DDP backend, FSDP);
* :class:`CommandSync`: the daemon's commands reach rank 0 only; at every optimizer step end
  rank 0 broadcasts "nothing / stop and save / stop / save now", so that every rank stops or
  saves at the same step (a save is collective: every rank writes its part);
* :class:`RankCheckpointStore`: rank 0 stages, commits (fsync + rename), reports and rotates a
  checkpoint; the other ranks write their own files (``rng_state_N.pth``, FSDP shards) into the
  same staging dir between two barriers, and report nothing, so a checkpoint costs one quota
  unit whatever the number of ranks.

In a single process (no ``WORLD_SIZE`` above 1) every function here is a no-op.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping
from typing import Any, Callable

from ..protocol import Emit, Save, Stop
from .checkpoints import CheckpointStore

__all__ = ["world_size", "rank", "local_rank", "is_main", "training_args_extra", "checkpoint_store",
           "CommandSync", "RankCheckpointStore", "barrier", "broadcast_code", "shutdown", "sum_over_ranks"]

# Commands as one integer, so a step end costs a single 8-byte broadcast.
DDP_TIMEOUT_S = 1800  # how long a rank waits for its peers in a collective (torch's default)
_NONE, _STOP_SAVE, _STOP, _SAVE = 0, 1, 2, 3


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, "") or default)
    except ValueError:
        return default


def world_size() -> int:
    return max(_env_int("WORLD_SIZE", 1), 1)


def rank() -> int:
    return _env_int("RANK", 0)


def local_rank() -> int:
    return _env_int("LOCAL_RANK", 0)


def is_main() -> bool:
    return rank() == 0


def _initialized() -> bool:
    if world_size() <= 1:
        return False
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def barrier() -> None:
    if _initialized():
        import torch.distributed as dist

        dist.barrier()


def _collective_device() -> Any:
    import torch
    import torch.distributed as dist

    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def broadcast_code(code: int) -> int:
    """Rank 0's ``code`` on every rank (the others pass anything): one decision for all."""
    if not _initialized():
        return code
    import torch
    import torch.distributed as dist

    flag = torch.tensor([code], dtype=torch.int64, device=_collective_device())
    dist.broadcast(flag, src=0)
    return int(flag.item())


def sum_over_ranks(values: Any) -> Any:
    """The element-wise sum of a float tensor over the ranks (a NaN or inf on any rank shows on all)."""
    if not _initialized():
        return values
    import torch.distributed as dist

    values = values.to(_collective_device())
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def shutdown() -> None:
    """Destroy the process group before the interpreter exits (a rank that ended normally).

    Left to the interpreter's exit, the group's worker threads (gloo's ``runLoop``) may still be
    releasing the last collective's tensors, which takes the GIL: a thread that asks for the GIL
    while Python finalizes is ended by ``pthread_exit``, whose forced unwind through those
    ``noexcept`` C++ frames calls ``std::terminate`` ("terminate called without an active
    exception", SIGABRT), and the launcher reports the rank as failed. Destroying the group while
    Python is whole joins those threads first. Not for a failing rank: a peer may be gone, so it
    leaves with ``os._exit`` and no teardown.
    """
    if _initialized():
        import torch.distributed as dist

        dist.destroy_process_group()


def training_args_extra(params: Mapping[str, Any], device: str) -> dict[str, Any]:
    """``TrainingArguments`` keywords of the distribution strategy ({} in one process)."""
    if world_size() <= 1:
        return {}
    extra: dict[str, Any] = {
        "ddp_backend": "gloo" if device == "cpu" else "nccl",
        # LoRA freezes the base; every trainable parameter is used in each forward pass.
        "ddp_find_unused_parameters": False,
        "ddp_timeout": DDP_TIMEOUT_S,
    }
    if params.get("distributed_strategy") == "fsdp":
        extra["fsdp"] = True
        extra["fsdp_config"] = {
            "version": 2,  # FSDP2 (fully_shard); wraps each transformer block (the model's _no_split_modules)
            "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
            "state_dict_type": "FULL_STATE_DICT",  # checkpoints stay ordinary HF / PEFT dirs
            "reshard_after_forward": True,
        }
    return extra


def checkpoint_store(output_dir: Any, save_total_limit: int, emit: Emit) -> CheckpointStore:
    """The checkpoint store of this process: rank-aware when there are several ranks."""
    if world_size() <= 1:
        return CheckpointStore(output_dir, save_total_limit, emit)
    return RankCheckpointStore(output_dir, save_total_limit, emit)


class RankCheckpointStore(CheckpointStore):
    """A :class:`CheckpointStore` shared by the ranks of one run (rank 0 owns the directory)."""

    def __init__(self, output_dir: Any, save_total_limit: int, emit: Emit):
        # Every rank opens the dir itself (never through a symlink); only rank 0 cleans leftovers,
        # reports, and rotates.
        super().__init__(output_dir, save_total_limit, emit if is_main() else (lambda event: None),
                         owner=is_main())
        if not is_main():
            self.limit = 0

    def staging_dir(self, step: int) -> str:
        if is_main():
            path = super().staging_dir(step)
            barrier()  # the dir exists before any rank writes into it
            return path
        barrier()
        self.staging = self.pin.subdir(f".tmp-checkpoint-{step}", create=False)[0]
        return self.staging.path

    def commit(self, step: int, staging: str, written: str, epoch: float | None, loss: float | None,
               hold_id: str = "") -> str:
        barrier()  # every rank has written its part
        if not is_main():
            self.last_saved_step = step
            if self.staging is not None:
                self.staging.close()
                self.staging = None
            return os.path.join(self.dir, f"checkpoint-{step}")
        rank0_rng = os.path.join(written, "rng_state_0.pth")
        single_rng = os.path.join(written, "rng_state.pth")
        if os.path.isfile(rank0_rng) and not os.path.exists(single_rng):
            # A one-process resume looks for rng_state.pth: give it rank 0's state.
            shutil.copyfile(rank0_rng, single_rng)
        return super().commit(step, staging, written, epoch, loss, hold_id)

    def discard(self, step: int, staging: str, exc: BaseException) -> BaseException:
        if is_main():
            return super().discard(step, staging, exc)
        if self.staging is not None:
            self.staging.close()
            self.staging = None
        return exc

    def apply_retention(self) -> list[str]:
        return super().apply_retention() if is_main() else []


def _encode(command: Stop | Save | None) -> int:
    if isinstance(command, Stop):
        return _STOP_SAVE if command.save else _STOP
    if isinstance(command, Save):
        return _SAVE
    return _NONE


def _decode(code: int) -> Stop | Save | None:
    if code == _STOP_SAVE:
        return Stop(save=True)
    if code == _STOP:
        return Stop(save=False)
    if code == _SAVE:
        return Save()
    return None


class CommandSync:
    """A ``poll_command`` that gives every rank the same command at the same step end.

    Rank 0 reads the daemon's command (``local_poll``) and adds the time-based saves
    (``save_interval_minutes``: the ranks' clocks differ, so only rank 0 decides); the
    decision is broadcast. ``EventCallback`` calls it once per optimizer step end on every
    rank, which keeps the collective in step.
    """

    def __init__(self, local_poll: Callable[[], Stop | Save | None], save_interval_s: float = 0.0):
        self.local_poll = local_poll
        self.interval_s = float(save_interval_s or 0)
        self._last_save = time.monotonic()
        self._device: Any = None

    def saved(self) -> None:
        """Rank 0: a checkpoint was just committed (restarts the save interval)."""
        self._last_save = time.monotonic()

    def _tensor_device(self) -> Any:
        if self._device is None:
            import torch
            import torch.distributed as dist

            if dist.get_backend() == "nccl":
                self._device = torch.device("cuda", torch.cuda.current_device())
            else:
                self._device = torch.device("cpu")
        return self._device

    def __call__(self) -> Stop | Save | None:
        command = self.local_poll() if is_main() else None
        if (is_main() and self.interval_s and not command
                and time.monotonic() - self._last_save >= self.interval_s):
            command = Save()
        if not _initialized():
            return command
        import torch
        import torch.distributed as dist

        flag = torch.tensor([_encode(command)], dtype=torch.int64, device=self._tensor_device())
        dist.broadcast(flag, src=0)
        return command if is_main() else _decode(int(flag.item()))
