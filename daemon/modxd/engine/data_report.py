"""The data report: what a training file holds, in tokens, before anything trains (torch-free).

A task's create (and ``--validate-only``) shows it so a user sees, before spending an hour, that
a third of the examples are cut at ``max_seq_length`` or that half the answers are "ok". The
numbers are the worker's: conversations are rendered with the task's chat template and labelled
exactly as engine/data.py does (engine/sft_tokens.py counts them quickly); pretraining documents
are tokenized and cut into blocks as engine/data.py does. It reports:

* examples per format detected, and the token-length distribution (quantiles, a histogram whose
  bins are eighths of ``max_seq_length`` plus one for longer examples);
* total and trainable (assistant) tokens, before and after truncation at ``max_seq_length``;
* findings, each with a count and the worst few lines: examples truncated (most tokens lost
  first), examples with nothing to learn (no assistant token left: training drops them), exact
  duplicates, duplicate prompts with different answers, very short answers, role order problems,
  lines the template cannot format, and (for an eval file) examples also in the training file;
* warnings ``(code, sentence)`` a front end can show as they are.

The report describes the whole file; ``max_samples`` and the eval split are applied by
engine/run_estimate.py, which reads the per-example lengths kept here.
"""
from __future__ import annotations

from array import array
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator

from . import formats
from .data_findings import (SHORT_ANSWER_CHARS, WORST, Finding, HistogramBin, LengthDistribution, LineExample,
                            SftFindings, Worst, digest, distribution, lines_text, share)
from .sft_tokens import SftTokenCounter
from .templating import ChatTokenizer, TokenizerDir, read_tokenizer_dir

__all__ = ["DataReport", "Finding", "LineExample", "LengthDistribution", "HistogramBin", "report_file",
           "report_sft", "report_pretrain", "SHORT_ANSWER_CHARS", "WORST"]

SHORT_ANSWER_WARN_SHARE = 0.05  # below this share, short answers are counted but not warned about
BATCH = 512  # conversations rendered and tokenized together


@dataclass
class DataReport:
    field: str
    path: str
    task_type: str
    max_seq_length: int
    format: str
    formats: dict[str, int]
    examples: int
    lengths: LengthDistribution
    total_tokens: int  # before truncation
    trainable_tokens: int  # labelled: assistant tokens (SFT), every token (pretraining)
    kept_tokens: int  # after truncation, of the examples training keeps (pretraining: whole blocks)
    kept_trainable_tokens: int
    truncated_tokens_lost: int
    truncated_trainable_tokens_lost: int
    blocks: int = 0  # pretraining: max_seq_length blocks
    findings: list[Finding] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    # Per example, in file order, for the estimate (engine/run_estimate.py): tokens kept (0: dropped)
    # and labelled tokens kept. Not part of the wire form.
    kept_lengths: array = field(default_factory=lambda: array("I"), repr=False)
    kept_labelled: array = field(default_factory=lambda: array("I"), repr=False)
    digests: set[bytes] = field(default_factory=set, repr=False)

    def finding(self, code: str) -> Finding:
        return next((f for f in self.findings if f.code == code), Finding(code))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (what the RPC message carries), without the per-example arrays."""
        out = asdict(self)
        for key in ("kept_lengths", "kept_labelled", "digests"):
            out.pop(key)
        out["warnings"] = [{"code": c, "message": m} for c, m in self.warnings]
        return out


def _batches(records: Iterator[tuple[int, list[dict[str, str]]]]) -> Iterator[list[tuple[int, list[dict[str, str]]]]]:
    batch: list[tuple[int, list[dict[str, str]]]] = []
    for record in records:
        batch.append(record)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def report_sft(path: str, chat: ChatTokenizer, max_seq_length: int, field: str = "train_file",
               format_counts: dict[str, int] | None = None, against: set[bytes] | None = None,
               context_length: int | None = None) -> DataReport:
    """The report of an SFT file that engine/formats.py has accepted (see the module docstring).

    ``format_counts`` is ``DataSummary.formats`` when the caller has it (else the file is read for
    it); ``against`` is the training report's ``digests`` when this is the eval file.
    """
    if format_counts is None:
        format_counts = formats.inspect_sft_file(path, field=field).formats
    counter = SftTokenCounter(chat, max_seq_length)
    found = SftFindings(max_seq_length, against)
    lengths, kept, labelled = array("I"), array("I"), array("I")
    examples = total = trainable = kept_total = kept_trainable = 0
    for batch in _batches(formats.iter_sft_records(path, field=field)):
        for (line, messages), counted in zip(batch, counter.count([m for _, m in batch])):
            found.add(line, messages, counted)
            examples += 1
            if not counted.error:  # the worker fails on such a line; it has no length
                lengths.append(counted.tokens)
            total += counted.tokens
            trainable += counted.labelled
            keep = min(counted.tokens, max_seq_length) if counted.labelled_kept else 0
            kept.append(keep)
            labelled.append(counted.labelled_kept)
            kept_total += keep
            kept_trainable += counted.labelled_kept
    report = DataReport(field, str(path), "sft", max_seq_length,
                        next(iter(format_counts)) if len(format_counts) == 1 else "mixed", dict(format_counts),
                        examples, distribution(lengths, max_seq_length), total, trainable, kept_total,
                        kept_trainable, found.lost, found.lost_labelled, findings=found.findings(),
                        kept_lengths=kept, kept_labelled=labelled, digests=set(found.copies))
    report.warnings = sft_warnings(report, context_length)
    return report


def sft_warnings(report: DataReport, context_length: int | None = None) -> list[tuple[str, str]]:
    """One sentence per finding worth acting on, with line numbers."""
    n, where, out = report.examples, f"{report.field} {report.path}", []
    limit = report.max_seq_length

    def lines_of(code: str) -> list[int]:
        return [e.line for e in report.finding(code).examples]

    f = report.finding("template_error")
    if f.count:
        out.append(("template_error", f"the chat template cannot format {share(f.count, n)} examples of {where} "
                                      f"(line {f.examples[0].line}: {f.examples[0].detail}); training fails on them"))
    f = report.finding("nothing_to_learn")
    if f.count:
        out.append(("examples_dropped", f"{share(f.count, n)} examples of {where} keep no answer token within "
                                        f"max_seq_length {limit} (their prompts are longer), so training drops "
                                        f"them: {lines_text(lines_of('nothing_to_learn'))}"))
    f = report.finding("truncated")
    if f.count:
        text = (f"{share(f.count, n)} examples of {where} are longer than max_seq_length {limit}: "
                f"{report.truncated_tokens_lost} tokens are cut, {report.truncated_trainable_tokens_lost} of them "
                f"answer tokens (longest first: {lines_text(lines_of('truncated'))})")
        keep = -(-report.lengths.p99 // 64) * 64
        if keep > limit and (context_length is None or keep <= context_length):
            text += f"; max_seq_length {keep} would keep 99% of them whole"
        out.append(("examples_truncated", text))
    f = report.finding("duplicate")
    if f.count:
        out.append(("duplicate_examples", f"{share(f.count, n)} examples of {where} repeat an earlier one exactly "
                                          f"(line {f.examples[0].line} {f.examples[0].detail}); repeats weigh "
                                          "more in training"))
    f = report.finding("conflicting_answers")
    if f.count:
        out.append(("conflicting_answers", f"{f.count} prompts of {where} have different answers (line "
                                           f"{f.examples[0].line}: {f.examples[0].detail}); the model is trained "
                                           "toward each of them"))
    f = report.finding("short_answer")
    if f.count and f.count >= SHORT_ANSWER_WARN_SHARE * n:
        out.append(("short_answers", f"{share(f.count, n)} examples of {where} answer in {SHORT_ANSWER_CHARS} "
                                     f"characters or fewer (line {f.examples[0].line}: {f.examples[0].detail}); "
                                     "each teaches little"))
    f = report.finding("role_order")
    if f.count:
        out.append(("role_order", f"{share(f.count, n)} examples of {where} have turns out of the usual order "
                                  f"(line {f.examples[0].line}: {f.examples[0].detail}); some chat templates "
                                  "refuse them"))
    f = report.finding("in_training_data")
    if f.count:
        out.append(("eval_in_train", f"{share(f.count, n)} examples of {where} are also in the training file "
                                     f"({lines_text(lines_of('in_training_data'))}): the eval loss will look better "
                                     "than the model generalises"))
    return out


# ------------------------------------------------------------------ pretraining

def _encode_lengths(tokenizer: Any, texts: list[str]) -> list[int]:
    encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)  # no offsets needed
    return [len(e.ids) for e in encode(texts, add_special_tokens=False)]


def report_pretrain(path: str, tokenizer_dir: TokenizerDir, max_seq_length: int,
                    field: str = "train_file") -> DataReport:
    """Documents, their tokens (one eos after each, as engine/data.py joins them) and the blocks they make."""
    if tokenizer_dir.backend is None:
        raise ValueError(f"the tokenizer in {tokenizer_dir.path} has no tokenizer.json to count tokens with")
    eos = 1 if tokenizer_dir.special_tokens.get("eos_token") else 0
    kind = formats.pretrain_kind(path)
    lengths = array("I")
    copies: dict[bytes, list[int]] = {}
    batch: list[str] = []

    def flush() -> None:
        lengths.extend(n + eos for n in _encode_lengths(tokenizer_dir.backend, batch))
        batch.clear()

    for number, text in enumerate(formats.iter_pretrain_texts(path, field=field), start=1):
        copies.setdefault(digest(text), []).append(number)
        batch.append(text)
        if len(batch) == BATCH:
            flush()
    flush()
    total = sum(lengths)
    blocks = total // max_seq_length
    duplicate = Worst("duplicate")
    for seen in copies.values():
        if len(seen) > 1:
            duplicate.count += len(seen) - 2
            duplicate.add(seen[0], len(seen) - 1, f"repeated {len(seen) - 1} more time(s): "
                                                 f"{lines_text(seen[1:], 'document')}")
    report = DataReport(field, str(path), "pretrain", max_seq_length, kind, {kind: len(lengths)}, len(lengths),
                        distribution(lengths, max_seq_length), total, total, blocks * max_seq_length,
                        blocks * max_seq_length, total - blocks * max_seq_length, total - blocks * max_seq_length,
                        blocks, [duplicate.finding()] if duplicate.count else [],
                        kept_lengths=array("I", [max_seq_length] * blocks),
                        kept_labelled=array("I", [max_seq_length] * blocks))
    where = f"{field} {path}"
    if duplicate.count:
        first = duplicate.finding().examples[0]
        report.warnings.append(("duplicate_examples", f"{share(duplicate.count, len(lengths))} documents of {where} "
                                                      f"repeat an earlier one exactly (document {first.line} "
                                                      f"{first.detail})"))
    if total and report.truncated_tokens_lost >= 0.1 * total:
        report.warnings.append(("tokens_dropped", f"{report.truncated_tokens_lost} of the {total} tokens of {where} "
                                                  f"do not fill a block of max_seq_length {max_seq_length} and are "
                                                  "dropped; lower max_seq_length or add text"))
    return report


# ------------------------------------------------------------------ entry point

def report_file(task_type: str, params: dict[str, Any], field: str = "train_file",
                summary: formats.DataSummary | None = None, against: DataReport | None = None,
                context_length: int | None = None) -> DataReport:
    """The report of ``params[field]`` with the task's tokenizer dir, template and max_seq_length.

    ``summary`` is what validation.validate_task already read (its format counts are reused);
    ``against`` is the training file's report when ``field`` is the eval file."""
    path = str(params[field])
    tokenizer_dir = str(params.get("tokenizer_dir") or params["model_dir"])
    max_seq_length = int(params["max_seq_length"])
    if task_type == "pretrain":
        return report_pretrain(path, read_tokenizer_dir(tokenizer_dir), max_seq_length, field)
    chat = ChatTokenizer(read_tokenizer_dir(tokenizer_dir, str(params.get("chat_template") or "")))
    return report_sft(path, chat, max_seq_length, field, summary.formats if summary else None,
                      against.digests if against is not None else None, context_length)
