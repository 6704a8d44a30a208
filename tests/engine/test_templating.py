"""The daemon's torch-free tokenizer (engine/templating.py) renders a conversation exactly as the worker's
transformers tokenizer does, and tokenizes it alike, so the create-time checks judge what training will do.

Tokens can differ where transformers swaps in a model-specific class that rebuilds the pre-tokenizer: the
tiny Qwen2 fixture saves a generic byte-level tokenizer.json that Qwen2Tokenizer replaces with Qwen's own
split. Hence the length check's margin (tokenizer_checks.fit_margin), checked here against that fixture."""
from __future__ import annotations

from pathlib import Path

import pytest

from modxd.engine import data as D
from modxd.engine.formats import iter_sft_conversations
from modxd.engine.models import load_tokenizer
from modxd.engine.templating import ChatTokenizer, TemplateProblem, read_tokenizer_dir
from modxd.tokenizer_checks import fit_margin

OWN_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}[{{ m['role'] | upper }}] {{ m['content'] }}{{ eos_token }}\n{% endfor %}"
    "{% if add_generation_prompt %}[ASSISTANT] {% endif %}")


@pytest.mark.parametrize("model", ["tiny_llama_dir", "tiny_qwen2_dir"])
@pytest.mark.parametrize("template", ["", OWN_TEMPLATE], ids=["tokenizer's", "parameter"])
def test_same_text_ids_and_labels_as_the_worker(request: pytest.FixtureRequest, model: str, template: str,
                                                sft_mixed_jsonl: Path) -> None:
    model_dir = str(request.getfixturevalue(model))
    worker = load_tokenizer(model_dir)
    if template:
        worker.chat_template = template  # as engine/train.py does with the parameter
    daemon = ChatTokenizer(read_tokenizer_dir(model_dir, template))
    exact = model == "tiny_llama_dir"  # its tokenizer.json is what the worker's class uses as it is
    for messages in iter_sft_conversations(str(sft_mixed_jsonl)):
        for generation_prompt in (False, True):
            assert daemon.apply_chat_template(messages, add_generation_prompt=generation_prompt) == \
                worker.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
        mine = D.tokenize_conversation(daemon, messages, 4096)[0]
        theirs = D.tokenize_conversation(worker, messages, 4096)[0]
        if exact:
            assert mine == theirs
        first = lambda ex: ex["labels"].index(next(x for x in ex["labels"] if x != D.IGNORE_INDEX))  # noqa: E731
        for max_len in (16, 64, 512):  # where the answer starts: never off by the margin
            assert abs(first(mine) - first(theirs)) < fit_margin(max_len)


def test_vocabulary_sizes_are_the_workers(tiny_llama_dir: Path) -> None:
    worker = load_tokenizer(str(tiny_llama_dir))
    base, total = read_tokenizer_dir(str(tiny_llama_dir)).vocab_sizes()
    assert total == len(worker) and base <= total


def test_a_template_that_is_not_jinja_names_its_line(tiny_llama_dir: Path) -> None:
    with pytest.raises(TemplateProblem, match="line 2"):
        ChatTokenizer(read_tokenizer_dir(str(tiny_llama_dir), "{% for m in messages %}\n{{ m['content'] }\n"))
