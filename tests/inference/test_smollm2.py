"""SmolLM2-135M-Instruct: a LoRA checkpoint (HF backend) and its unmerged GGUF package (llama.cpp
backend + adapter GGUF) both answer a factual question through the daemon."""
from __future__ import annotations

from pathlib import Path

import pytest
from modx.v1 import package_pb2 as P
from modx.v1 import training_pb2 as T

from .conftest import chat, chat_request, train_task

# SmolLM2-135M's first answer token is a near-tie between "The" and "L'" under its default
# system prompt; asking for an English sentence settles it (see tests/package/test_smollm2.py).
SYSTEM = "Answer the question in one short English sentence."
QUESTION = "What is the capital of France?"


@pytest.fixture(scope="module")
def smol_task(daemon, smollm2_import, sft_jsonl, tmp_path_factory) -> tuple[str, T.Checkpoint]:
    """SmolLM2 imported as a Hugging Face dir (the session's import, see conftest), then 2 LoRA
    steps at a small learning rate (the checkpoint must still know its facts)."""
    base = tmp_path_factory.mktemp("chat-smollm2")
    _source, imported, _seconds = smollm2_import
    task_id = train_task(daemon, Path(imported["output_dir"]), sft_jsonl, base / "o", max_samples=4,
                         learning_rate=1e-5, save_steps=2, fp16="false", gradient_checkpointing="false")
    ckpt = daemon.training.ListCheckpoints(T.ListCheckpointsRequest(task_id=task_id)).checkpoints[-1]
    return task_id, ckpt


def test_smollm2_checkpoint_answers_the_capital_of_france(daemon, smol_task) -> None:
    task_id, ckpt = smol_task
    reply = chat(daemon, chat_request(task_id, QUESTION, system=SYSTEM, checkpoint=ckpt.id, temperature=0,
                                      max_new_tokens=24))
    assert "Paris" in reply.done.text, reply.done
    assert reply.text == reply.done.text and len(reply.deltas) >= 2  # streamed (in 10 ms groups)
    assert reply.done.finish_reason == 1  # STOP_TOKEN: it ended its turn by itself


def test_smollm2_unmerged_gguf_package_answers_too(daemon, smol_task) -> None:
    task_id, ckpt = smol_task
    created = daemon.packages.CreatePackage(P.CreatePackageRequest(
        task_id=task_id, checkpoint=ckpt.id, quant_types=[P.QUANT_TYPE_Q8_0], merge=False,
        skip_verification=True)).package
    for _ in daemon.packages.WatchPackage(P.WatchPackageRequest(package_id=created.id), timeout=300):
        pass
    package = daemon.packages.GetPackage(P.GetPackageRequest(package_id=created.id)).package
    assert package.state == 3, package.state_reason  # completed
    assert {f.kind for f in package.files} >= {"model", "adapter"}
    reply = chat(daemon, chat_request(task_id, QUESTION, system=SYSTEM, package_id=created.id, temperature=0,
                                      max_new_tokens=24))
    assert "Paris" in reply.done.text, reply.done
    assert reply.done.model_key == f"{task_id}/{created.id}/Q8_0@cpu"
    assert reply.done.finish_reason == 1
