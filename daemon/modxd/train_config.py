"""What a training worker runs: a task's TrainParams plus what only the run knows.

The supervisor builds a `TrainConfig` from the stored task and sends `to_wire()` (a JSON
object) to the worker; the engine gets it back with `from_wire`, through the same schema
(params.py), so a parameter is typed and checked in one place. What the worker alone can
know (whether the device exists, which precision it supports) the engine checks itself.

Direct engine calls (tests, bench/) build one with `TrainConfig.from_params`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from . import params as P


@dataclass(frozen=True)
class TrainConfig:
    """One training run; the engine-only settings are fields here, never loose keys of a dict."""

    params: P.TrainParams
    device: str = "cpu"  # this process's device: cpu or cuda[:N]
    process_devices: tuple[str, ...] = ()  # one rank per device (engine/launch.py); () = `device` alone
    task_id: str = ""
    reserve_quota: bool = False  # the daemon charges checkpoints: each save is reserved first (engine/quota.py)
    padding_free: bool = True  # packed batches where the model allows (engine/packing.py)
    fp16_explicit: bool = False  # keep fp16 on a bf16 GPU (engine/precision.py)
    allowed_roots: tuple[str, ...] | None = None  # the daemon's roots; the worker confines every open to them

    @property
    def task_type(self) -> str:
        return self.params.task_type

    @classmethod
    def from_params(cls, task_type: str = P.SFT, **values: Any) -> "TrainConfig":
        """A run of `values`: the run's own fields by name, the rest parameters of `task_type`,
        resolved by the schema like a task's (None keeps a parameter's default for the type)."""
        run = {k: values.pop(k) for k in _RUN_FIELDS if k in values}
        params = P.resolve(task_type, {}, {k: v for k, v in values.items() if v is not None})
        return cls._make(params, run)

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> "TrainConfig":
        """The config a worker received (`to_wire`); a key that is neither a field nor a parameter is refused."""
        values = dict(wire)
        task_type = str(values.pop("task_type", P.SFT))
        run = {k: values.pop(k) for k in _RUN_FIELDS if k in values}
        return cls._make(P.resolve(task_type, {}, values), run)

    @classmethod
    def _make(cls, params: P.TrainParams, run: dict[str, Any]) -> "TrainConfig":
        if "process_devices" in run:
            run["process_devices"] = tuple(str(d) for d in run["process_devices"] or ())
        if run.get("allowed_roots") is not None:
            run["allowed_roots"] = tuple(str(r) for r in run["allowed_roots"])
        return cls(params, **run)

    def to_wire(self) -> dict[str, Any]:
        """One flat JSON object: the parameters, task_type and the run's fields (the worker's launcher
        and ranks read `device`, `process_devices`, `nnodes`, `output_dir` from it)."""
        out: dict[str, Any] = {**self.params.to_dict(), "task_type": self.task_type}
        for name in _RUN_FIELDS:
            value = getattr(self, name)
            out[name] = list(value) if isinstance(value, tuple) else value
        return out

    def with_params(self, **changes: Any) -> "TrainConfig":
        """The same run with some parameters changed (checked by the schema)."""
        return dataclasses.replace(self, params=self.params.replace(**changes))

    def with_run(self, **changes: Any) -> "TrainConfig":
        """The same parameters with some of the run's fields changed."""
        return dataclasses.replace(self, **changes)


_RUN_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name != "params")
