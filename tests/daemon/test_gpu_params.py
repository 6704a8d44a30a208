"""The GPU parameters at create: QLoRA refused without a CUDA GPU, Liger ignored with a warning on the
CPU, the VRAM estimate checked against the host's GPUs, telemetry on the wire."""
from __future__ import annotations

import grpc
import pytest
from modx.v1 import training_pb2 as T

from modxd import params as P
from modxd import placement
from modxd.errors import FailedPrecondition, InvalidArgument
from modxd.hardware import GiB, Gpu
from modxd.memory_plan import Capacity, capacity, plan_memory

from .helpers import create_request, sft_params

LLAMA_1B = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 2048,
            "num_hidden_layers": 16, "intermediate_size": 8192, "num_attention_heads": 32, "num_key_value_heads": 8,
            "vocab_size": 128256, "tie_word_embeddings": True}
REQUIRED = {"train_file": "/d/train.jsonl", "output_dir": "/d/out", "model_dir": "/d/model"}


def _resolved(**overrides) -> dict:
    return P.resolve("sft", {}, {**REQUIRED, **overrides})


@pytest.mark.parametrize("overrides, fragment", [
    ({"quantization_bit": 3}, "quantization_bit must be 0 (off), 4 (QLoRA, NF4) or 8"),
    ({"quantization_bit": 16}, "quantization_bit must be between 0 and 8"),
    ({"quantization_bit": 4, "use_lora": False}, "quantization_bit 4 needs use_lora"),
    ({"quantization_bit": "four"}, "quantization_bit must be an integer"),
])
def test_bad_quantization_values_are_refused(overrides: dict, fragment: str) -> None:
    with pytest.raises(InvalidArgument, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        _resolved(**overrides)


def test_schema_entries() -> None:
    q, liger = P.BY_KEY["quantization_bit"], P.BY_KEY["use_liger_kernel"]
    assert q.default == 0 and q.fold_group == "optimization" and q.label_zh and q.label_en and q.help
    assert liger.default is False and liger.fold_group == "optimization"
    assert _resolved(quantization_bit="4")["quantization_bit"] == 4


def test_qlora_needs_a_gpu_and_bitsandbytes(monkeypatch) -> None:
    params = _resolved(quantization_bit=4)
    with pytest.raises(FailedPrecondition, match="needs a CUDA GPU.*this daemon's training devices: cpu"):
        placement.check_task(params, ["cpu"], cpu_count=2)
    with pytest.raises(FailedPrecondition, match="needs a CUDA GPU"):
        placement.check_task({**params, "devices": "cpu"}, ["cuda:0", "cpu"], cpu_count=2)
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bitsandbytes" else real(name, *a))
    with pytest.raises(FailedPrecondition, match="needs the bitsandbytes package"):
        placement.check_task(params, ["cuda:0"], cpu_count=2)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "bitsandbytes" else real(name, *a))
    assert placement.check_task(params, ["cuda:0"], cpu_count=2) == 1
    with pytest.raises(InvalidArgument, match="not available with distributed_strategy fsdp"):
        placement.check_task({**params, "devices": "2", "distributed_strategy": "fsdp"}, ["cuda:0", "cuda:1"],
                           cpu_count=2)


def test_liger_is_ignored_with_a_warning_on_the_cpu() -> None:
    params = _resolved(use_liger_kernel=True)
    warnings = placement.feature_warnings(params, ["cpu"])
    assert [code for code, _ in warnings] == ["liger_ignored"] and "CPU" in warnings[0][1]
    assert placement.feature_warnings(_resolved(), ["cpu"]) == []


def _gpu(index: int, gib: int) -> Gpu:
    return Gpu(index, f"Test GPU {gib}G", gib * GiB, gib * GiB, "9.0")


def test_memory_plan_against_the_host_gpus() -> None:
    params = _resolved()
    judged = {"fits": True, "tight": False, "explanation": "judged by the run estimate"}
    assert plan_memory(params, LLAMA_1B, 0, capacity(params, []), judged) == (None, [])  # a CPU run: the run estimate
    assert capacity({**params, "devices": "cpu"}, [_gpu(0, 80)]).kind == "host_rss"
    memory, warnings = plan_memory(params, LLAMA_1B, 0, capacity(params, [_gpu(0, 80)]), None)
    assert memory["fits"] and warnings == [] and memory["device"] == "cuda:0 (Test GPU 80G)"
    big = {**params, "per_device_train_batch_size": 64, "max_seq_length": 4096, "devices": "cuda:0,cuda:1"}
    where = capacity(big, [_gpu(0, 80), _gpu(1, 24)])
    assert where.device.startswith("cuda:1") and where.total_bytes == 24 * GiB  # the smallest it may get
    memory, warnings = plan_memory(big, LLAMA_1B, 0, where, None)
    assert not memory["fits"]  # modelled only: a warning that says what would fit, not a refusal
    assert warnings[0][0] == "memory_insufficient" and "per_device_train_batch_size" in warnings[0][1]
    unknown = capacity(params, [], "cuda:0")  # placed on a GPU that nvidia-smi did not describe
    assert (unknown.kind, unknown.total_bytes) == ("device", 0)  # judged against nothing, not host RAM
    fsdp = capacity({**big, "distributed_strategy": "fsdp"}, [_gpu(0, 80), _gpu(1, 24)], world=2)
    assert fsdp.total_bytes == 48 * GiB  # sharded weights and state
    with pytest.raises(FailedPrecondition, match="will not fit.*cuda:0.*weights and optimizer state alone"):
        plan_memory({**params, "use_lora": False}, LLAMA_1B, 0, capacity(params, [_gpu(0, 8)]), None)
    run_verdict = {"fits": True, "tight": False, "explanation": "estimated peak GPU memory 3.00 GiB of 8.0 GiB"}
    memory, warnings = plan_memory({**params, "use_lora": False}, LLAMA_1B, 0, capacity(params, [_gpu(0, 8)]),
                                   run_verdict)  # the run estimate judged already: one verdict, no second
    assert memory["fits"] and warnings == [] and memory["explanation"].startswith(run_verdict["explanation"])


def test_a_task_without_a_run_estimate_is_judged_on_the_model_alone_on_the_cpu_too() -> None:
    """DPO/ORPO have no data report: their memory is the model-only estimate, host RAM on a CPU run."""
    dpo = P.resolve("dpo", {}, {**REQUIRED, "use_lora": False})
    host = lambda gib: Capacity("cpu", gib * GiB, gib * GiB, "host_rss")  # noqa: E731
    assert plan_memory(dpo, LLAMA_1B, 0, host(512), None) == (None, [])
    with pytest.raises(FailedPrecondition, match="will not fit.*host memory.*weights and optimizer state alone"):
        plan_memory(dpo, LLAMA_1B, 0, host(8), None)  # fp32 weights, a reference copy and AdamW state
    memory, warnings = plan_memory(dpo, LLAMA_1B, 0, host(26), None)  # fits the floor, not the batch's peak
    assert memory is None and [c for c, _ in warnings] == ["memory_insufficient"]


def test_estimate_and_telemetry_on_the_wire() -> None:
    from modxd.api.convert import estimate_to_proto, metrics_to_proto

    memory, _ = plan_memory(_resolved(), LLAMA_1B, 0, capacity(_resolved(), [_gpu(0, 80)]), None)
    msg = estimate_to_proto({"num_examples": 1, "total_steps": 1, "fits": True, "memory": memory})
    assert msg.memory.fits and msg.memory.capacity_bytes == 80 * GiB and msg.memory.parts["weights"] > 0
    point = metrics_to_proto({"step": 3, "loss": 1.0, "device_memory_peak_bytes": 5 * GiB,
                              "gpu_utilization_percent": 97.0, "gpu_power_watts": 512.5,
                              "host_memory_rss_bytes": 123})
    assert point.device_memory_peak_bytes == 5 * GiB and point.gpu_power_watts == 512.5
    assert point.HasField("host_memory_rss_bytes") and not point.HasField("device_memory_reserved_bytes")


def test_create_refuses_qlora_on_this_cpu_host(daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    req = create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "out", quantization_bit=4))
    with pytest.raises(grpc.RpcError) as info:
        daemon.training.CreateTask(req)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "quantization_bit 4 (QLoRA) needs a CUDA GPU" in info.value.details()
    resp = daemon.training.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "out2",
                                                                  use_liger_kernel=True)))
    assert [w.code for w in resp.warnings if w.code == "liger_ignored"] == ["liger_ignored"]
    assert not resp.task.quota_estimate.HasField("memory")  # a CPU host: no GPU estimate
    assert daemon.training.GetTask(T.GetTaskRequest(task_id=resp.task.id)).task.id == resp.task.id
