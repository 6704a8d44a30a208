"""The rules that involve more than one training parameter (params.py applies them in `resolve`).

Each takes the parameters as a mapping and raises InvalidArgument with a sentence naming the
parameter at fault. Hardware (a CUDA GPU, bitsandbytes, enough devices) is checked at create by
placement.py; files by validation.py.
"""
from __future__ import annotations

from typing import Any, Mapping

from .device_request import parse_devices
from .plan import eval_data_problem
from .errors import InvalidArgument, quote
from .preference_params import check_preference

QUANTIZATION_BITS = (0, 4, 8)
REQUIRED_PATHS = ("train_file", "output_dir", "model_dir")


def check_consistency(params: Mapping[str, Any], complete: bool = True, task_type: str = "") -> None:
    """Every cross-parameter rule; `complete=False` (templates) lets the required paths stay empty."""
    check_evaluation(params)
    check_preference(params, task_type)
    check_quantization(params)
    check_distribution(params)
    for key in REQUIRED_PATHS:
        if complete and not params.get(key):
            raise InvalidArgument(f"parameter {key} is required")


def check_evaluation(params: Mapping[str, Any]) -> None:
    """Evaluation needs evaluation data (modxd/plan.py has the rule); early stopping needs evaluation."""
    problem = eval_data_problem(str(params.get("eval_strategy", "no")), str(params.get("eval_file") or ""),
                                float(params.get("eval_split_ratio", 0) or 0))
    if problem:
        raise InvalidArgument(problem)
    if int(params.get("early_stopping_patience", 0)) > 0 and params.get("eval_strategy", "no") == "no":
        raise InvalidArgument(
            "parameter early_stopping_patience needs eval_strategy steps or epoch (and evaluation data)")


def check_distribution(params: Mapping[str, Any]) -> None:
    """Syntax of the distribution parameters; the hardware is checked at create (placement.py)."""
    parse_devices(params.get("devices", "1"))
    endpoint = str(params.get("rdzv_endpoint", "") or "").strip()
    if endpoint:
        host, _, port = endpoint.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise InvalidArgument(f"parameter rdzv_endpoint must be host:port, got {quote(endpoint)}")
    if int(params.get("nnodes", 1) or 1) > 1 and not endpoint:
        raise InvalidArgument(
            "parameter nnodes above 1 needs rdzv_endpoint: host:port of this daemon's host, "
            "which the other hosts reach")


def check_quantization(params: Mapping[str, Any]) -> None:
    """quantization_bit is 0, 4 or 8 and quantizes a frozen base, so it needs LoRA; the hardware
    (a CUDA GPU, bitsandbytes) is checked at create (placement.py)."""
    bits = int(params.get("quantization_bit", 0) or 0)
    if bits not in QUANTIZATION_BITS:
        raise InvalidArgument(f"parameter quantization_bit must be 0 (off), 4 (QLoRA, NF4) or 8, got {bits}")
    if bits and not params.get("use_lora", True):
        raise InvalidArgument(f"parameter quantization_bit {bits} needs use_lora: quantized base weights are "
                              "frozen, so only LoRA adapters can be trained on them")
