"""Which attention kernel packed batches get, and that the kernel adapter computes the loop's maths.

The kernels themselves need a CUDA GPU (tests/gpu/test_gpu_kernels.py); here, on the CPU, the
choice is checked for every combination of device and availability, and the adapter around
torch's varlen kernel (layouts, the keywords of torch 2.10 / 2.11 / 2.13, grouped-query heads,
the scale) is run against a CPU implementation of the kernel's documented contract.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from modxd.engine import attention as A

torch = pytest.importorskip("torch")
F = torch.nn.functional


@pytest.mark.parametrize("support, expected", [
    (A.VarlenSupport("cpu"), A.LOOP),
    (A.VarlenSupport("cpu", None, True, True), A.LOOP),
    (A.VarlenSupport("mps", None, True, False), A.LOOP),
    (A.VarlenSupport("cuda", (7, 5), True, True), A.LOOP),  # Turing: no FlashAttention kernels
    (A.VarlenSupport("cuda", (8, 0), True, False), A.TORCH_VARLEN),
    (A.VarlenSupport("cuda", (9, 0), True, True), A.FLASH_ATTN),  # installed flash-attn wins
    (A.VarlenSupport("cuda", (9, 0), False, True), A.FLASH_ATTN),
    (A.VarlenSupport("cuda", (8, 6), False, False), A.LOOP),  # e.g. torch 2.9 without varlen
])
def test_backend_choice(support: A.VarlenSupport, expected: str) -> None:
    backend, why = A.choose_backend(support)
    assert backend == expected
    assert why  # every choice says why (it is logged once per device)


def test_the_cpu_gets_the_loop_and_the_choice_is_logged_once(caplog) -> None:
    A._decided.cache_clear()
    with caplog.at_level("INFO", logger="modxd.engine"):
        assert A.backend_for(torch.device("cpu")) == A.LOOP
        assert A.backend_for(torch.device("cpu")) == A.LOOP
    assert [r.getMessage() for r in caplog.records].count(
        "packed attention on cpu: cpu has no FlashAttention kernels: causal SDPA per packed example") == 1


@pytest.mark.parametrize("dtype, head_dim, dropout, ok", [
    ("bfloat16", 64, 0.0, True), ("float16", 128, 0.0, True), ("float32", 64, 0.0, False),
    ("bfloat16", 512, 0.0, False), ("bfloat16", 60, 0.0, False), ("bfloat16", 64, 0.1, False),
])
def test_calls_the_kernel_cannot_take_fall_back(dtype: str, head_dim: int, dropout: float, ok: bool) -> None:
    assert (A.call_problem(dtype, head_dim, dropout) is None) is ok


def _contract_kernel(with_scale: bool, with_gqa: bool, causal_keyword: str):
    """torch's varlen_attn contract, computed on the CPU one example at a time."""
    def kernel(q: Any, k: Any, v: Any, cu_q: Any, cu_k: Any, max_q: int, max_k: int, **kw: Any) -> Any:
        allowed = {causal_keyword} | ({"scale"} if with_scale else set()) | ({"enable_gqa"} if with_gqa else set())
        assert set(kw) <= allowed, f"{set(kw) - allowed} is not a keyword of this torch release"
        assert kw.get("window_size") == (-1, 0) or kw.get("is_causal") is True
        assert q.dim() == 3 and cu_q.dtype == torch.int32 and torch.equal(cu_q, cu_k)
        assert max_q == int((cu_q[1:] - cu_q[:-1]).max())
        if q.shape[1] != k.shape[1]:
            assert kw.get("enable_gqa"), "grouped-query heads without enable_gqa"
        edges = cu_q.tolist()
        parts = [F.scaled_dot_product_attention(q[a:b].transpose(0, 1), k[a:b].transpose(0, 1),
                                                v[a:b].transpose(0, 1), is_causal=True, scale=kw.get("scale"),
                                                enable_gqa=bool(kw.get("enable_gqa"))).transpose(0, 1)
                 for a, b in zip(edges[:-1], edges[1:])]
        return torch.cat(parts, dim=0)
    return kernel


RELEASES = {  # keywords of varlen_attn besides the positional ones
    "2.10": (frozenset({"is_causal", "return_aux"}), dict(with_scale=False, with_gqa=False,
                                                         causal_keyword="is_causal")),
    "2.11": (frozenset({"window_size", "return_aux", "scale"}), dict(with_scale=True, with_gqa=False,
                                                                     causal_keyword="window_size")),
    "2.13": (frozenset({"window_size", "return_aux", "scale", "enable_gqa"}),
             dict(with_scale=True, with_gqa=True, causal_keyword="window_size")),
}


@pytest.mark.parametrize("release", sorted(RELEASES))
@pytest.mark.parametrize("kv_heads", [4, 2], ids=["mha", "gqa"])
@pytest.mark.parametrize("scale", [None, 0.3])
def test_torch_varlen_adapter_matches_the_loop(release: str, kv_heads: int, scale: float | None) -> None:
    from modxd.engine.packing import _loop_attention

    keywords, flags = RELEASES[release]
    rng = random.Random(3)
    lengths = [rng.randint(1, 40) for _ in range(5)]
    bounds = torch.tensor([0] + [sum(lengths[:i + 1]) for i in range(len(lengths))], dtype=torch.int32)
    total = int(bounds[-1])
    query = torch.randn(1, 4, total, 16, dtype=torch.float64)
    key, value = (torch.randn(1, kv_heads, total, 16, dtype=torch.float64) for _ in range(2))
    q, k, v = (t[0].transpose(0, 1) for t in (query, key, value))
    out = A._torch_varlen(q, k, v, bounds, max(lengths), scale, kernel=_contract_kernel(**flags), keywords=keywords)
    expected = _loop_attention(query, key, value, bounds, scale, 0.0)[0]
    torch.testing.assert_close(out, expected)


def test_the_installed_torch_release_is_one_the_adapter_knows() -> None:
    pytest.importorskip("torch.nn.attention.varlen")
    keywords = A._torch_varlen_keywords()
    assert "window_size" in keywords or "is_causal" in keywords


def test_packed_model_through_the_kernel_path_matches_padded_batches(tmp_path, monkeypatch) -> None:
    """The whole dispatch (layouts in and out of the model's attention) with the kernel path forced:
    a bf16 model, the kernel replaced by the contract on the CPU, the same loss as padded batches."""
    from modxd.engine import packing
    from modxd.engine.data import PadCollator
    from modxd.engine.models import apply_lora, load_model
    from modxd.engine.packing import PackedCollator, labelled_loss, use_padding_free
    from tests.fixtures.tiny_models import make_tiny_qwen2

    calls: list[int] = []
    contract = _contract_kernel(**RELEASES["2.13"][1])

    def kernel(q: Any, k: Any, v: Any, bounds: Any, longest: int, scale: float | None) -> Any:
        calls.append(int(bounds[-1]))
        return A._torch_varlen(q, k, v, bounds, longest, scale, kernel=contract, keywords=RELEASES["2.13"][0])

    monkeypatch.setattr(packing, "backend_for", lambda device: A.TORCH_VARLEN)
    monkeypatch.setattr(packing, "varlen_kernel", lambda backend: kernel)
    torch.manual_seed(0)
    model = apply_lora(load_model(str(make_tiny_qwen2(tmp_path / "m")), "bfloat16"), 8, 16, 0.0, ["all-linear"])
    rng = random.Random(1)
    features = []
    for _ in range(4):
        ids = [rng.randrange(5, model.config.vocab_size) for _ in range(rng.randint(5, 60))]
        features.append({"input_ids": ids, "labels": [-100] * 3 + ids[3:]})
    n_items = sum(1 for f in features for label in f["labels"][1:] if label != -100)
    with torch.no_grad():
        padded = model(**PadCollator(pad_token_id=0)(features), num_items_in_batch=torch.tensor(n_items)).loss
        use_padding_free(model)
        batch = PackedCollator()(features)
        labels = batch.pop("labels")
        packed = labelled_loss(model(**batch), labels, torch.tensor(n_items))
    assert calls and calls[0] == sum(len(f["input_ids"]) for f in features)  # one call per layer, whole row
    assert abs(packed.item() - padded.item()) < 2e-2  # bf16 arithmetic, different summation order
