"""The files of an evaluation, in ``<output_dir>/eval/<evaluation id>/``.

* ``scores.csv`` - one row per checkpoint: every metric, composite, rank, is_best and the settings used;
* ``examples.jsonl`` - one line per (checkpoint, example): prompt, reference, generation, per-metric scores;
* ``report.md`` - the human report: settings, ranked table, verdict, chart, sample generations;
* ``scores.png`` - composite and metrics per checkpoint step (matplotlib, Agg);
* ``result.json`` - what the job returned (per-checkpoint scores, verdict, settings, file paths).

Every file is written to a temporary name and renamed into place.
"""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..durable import write_atomic
from . import metrics as M

__all__ = ["write_all", "CSV_COLUMNS", "FILE_NAMES"]

FILE_NAMES = {"report_path": "report.md", "csv_path": "scores.csv", "examples_path": "examples.jsonl",
              "chart_path": "scores.png", "result_path": "result.json"}
METRIC_COLUMNS = ["perplexity", "bits_per_byte", "semantic_similarity", "coherence", "coverage", "composite",
                  "preference_accuracy", "preference_margin", "preference_pairs"]  # the last three: dpo, orpo
CSV_COLUMNS = (["rank", "is_best", "checkpoint_id", "label", "step"] + METRIC_COLUMNS
               + ["diff_vs_best", "p_vs_best", "examples", "answer_tokens", "answer_bytes", "evaluation_id", "task_id",
                  "task_type", "data_source", "data_path", "samples", "seed", "temperature", "top_p", "top_k",
                  "repetition_penalty", "max_new_tokens", "generation_seed", "weights", "verdict"])
PREVIEW_EXAMPLES = 3
M_BASE = "base"


def _num(value: Any) -> Any:
    """Full-precision numbers in files; None stays empty."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return value


def write_all(out_dir: Path, result: dict[str, Any], examples: Sequence[Any],
              per_candidate: Sequence[Sequence[M.ExampleScores]], generations: Sequence[Sequence[str]],
              summaries: Sequence[dict[str, Any]], weights: dict[str, float],
              shown_dir: Path | None = None) -> dict[str, str]:
    """Write every file into `out_dir`; returns their paths (keys of FILE_NAMES) in `shown_dir` (the
    real path of the dir, when `out_dir` is an open dir's /proc/self/fd/N)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    where = {key: out_dir / name for key, name in FILE_NAMES.items()}
    paths = {key: str(Path(shown_dir or out_dir) / name) for key, name in FILE_NAMES.items()}
    write_atomic(where["csv_path"], csv_text(result).encode("utf-8"))
    lines = example_records(result, examples, per_candidate, generations, summaries, weights)
    write_atomic(where["examples_path"],
                  "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines).encode("utf-8"))
    chart = write_chart(where["chart_path"], result)
    if chart is None:
        paths["chart_path"] = ""
    write_atomic(where["report_path"],
                  markdown(result, examples, generations, summaries, chart is not None).encode("utf-8"))
    write_atomic(where["result_path"],
                  json.dumps({**result, **paths}, ensure_ascii=False, indent=2).encode("utf-8"))
    return paths


def conversations(result: dict[str, Any]) -> bool:
    """Whether the examples were conversations with generated answers: SFT, and dpo/orpo conversational pairs."""
    return bool(result.get("conversations", result["task_type"] == "sft"))


# ----------------------------------------------------------------------------- CSV

def csv_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    gen = result["generation"]
    weights = ";".join(f"{k}={v}" for k, v in result["weights"].items())
    rows = []
    for s in result["scores"]:
        rows.append({
            "rank": s["rank"], "is_best": "true" if s["is_best"] else "false", "checkpoint_id": s["checkpoint_id"],
            "label": s["label"], "step": s["step"], **{k: _num(s.get(k)) for k in METRIC_COLUMNS},
            "diff_vs_best": _num(s.get("diff_vs_best")), "p_vs_best": _num(s.get("p_vs_best")),
            "examples": s["examples"], "answer_tokens": s["tokens"], "answer_bytes": s["n_bytes"],
            "evaluation_id": result["evaluation_id"], "task_id": result["task_id"], "task_type": result["task_type"],
            "data_source": result["data_source"], "data_path": result["data_path"], "samples": result["samples"],
            "seed": result["seed"], "temperature": _num(gen.get("temperature")), "top_p": _num(gen.get("top_p")),
            "top_k": gen.get("top_k"), "repetition_penalty": _num(gen.get("repetition_penalty")),
            "max_new_tokens": gen.get("max_new_tokens"), "generation_seed": gen.get("seed"), "weights": weights,
            "verdict": result["verdict"]})
    return rows


def csv_text(result: dict[str, Any]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(csv_rows(result))
    return buf.getvalue()


# ----------------------------------------------------------------------------- JSONL

def example_records(result: dict[str, Any], examples: Sequence[Any], per_candidate: Sequence[Sequence[M.ExampleScores]],
                    generations: Sequence[Sequence[str]], summaries: Sequence[dict[str, Any]],
                    weights: dict[str, float]) -> Iterable[dict[str, Any]]:
    sft = conversations(result)
    for summary, scores, answers in zip(summaries, per_candidate, generations):
        for j, (example, s) in enumerate(zip(examples, scores)):
            record: dict[str, Any] = {"evaluation_id": result["evaluation_id"],
                                      "checkpoint_id": summary["checkpoint_id"], "label": summary["label"],
                                      "step": summary["step"], "example": j}
            if sft:
                record.update(prompt=example.prompt, reference=example.reference,
                              generation=answers[j] if answers else "")
            else:
                record.update(text=example.text)
            record.update(answer_tokens=s.tokens, answer_bytes=s.n_bytes, nll=s.nll,
                          perplexity=M.perplexity(s.nll, s.tokens) if s.tokens else None,
                          bits_per_byte=M.bits_per_byte(s.nll, s.n_bytes) if s.n_bytes else None)
            if sft:
                record.update(semantic_similarity=s.semantic_similarity, coherence=s.coherence, coverage=s.coverage)
            record["composite"] = M.example_composite(s, weights) if s.tokens else None
            yield record


# ----------------------------------------------------------------------------- chart

def write_chart(path: Path, result: dict[str, Any]) -> Path | None:
    """Scores per checkpoint step (base model at step 0); None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception:  # noqa: BLE001 - the report is still useful without the chart
        return None
    scores = sorted(result["scores"], key=lambda s: (s["step"], s["checkpoint_id"] != M_BASE))
    steps = [s["step"] for s in scores]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7), sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    top.plot(steps, [s["composite"] for s in scores], "o-", linewidth=2.5, color="black", label="composite")
    series = [("2^-bits per byte", [2 ** -s["bits_per_byte"] for s in scores])]
    if conversations(result):
        series += [(name.replace("_", " "), [s.get(name) or 0.0 for s in scores])
                   for name in ("semantic_similarity", "coverage", "coherence")]
    for label, values in series:
        top.plot(steps, values, ".--", alpha=0.8, label=label)
    best = next(s for s in scores if s["is_best"])
    top.plot([best["step"]], [best["composite"]], "*", markersize=18, color="gold", markeredgecolor="black",
             label=f"best: {best['label']}")
    top.set_ylim(-0.02, 1.02)
    top.set_ylabel("score (0-1)")
    top.set_title(f"Evaluation {result['evaluation_id']} - scores per checkpoint")
    top.grid(alpha=0.3)
    top.legend(fontsize=8, loc="best")
    bottom.plot(steps, [s["perplexity"] for s in scores], "o-", color="tab:red", label="perplexity")
    bottom.set_yscale("log")
    bottom.set_ylabel("perplexity (log)")
    twin = bottom.twinx()
    twin.plot(steps, [s["bits_per_byte"] for s in scores], "s--", color="tab:blue", label="bits per byte")
    twin.set_ylabel("bits per byte")
    bottom.set_xlabel("checkpoint step (0 = base model)")
    bottom.grid(alpha=0.3)
    handles = bottom.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    bottom.legend(handles, [h.get_label() for h in handles], fontsize=8, loc="best")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    write_atomic(path, buf.getvalue())
    return path



# ----------------------------------------------------------------------------- Markdown

def _cell(value: Any, spec: str = ".4f") -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, float):
        return format(value, spec) if math.isfinite(value) else str(value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def _quote(text: str, limit: int = 600) -> str:
    text = text if len(text) <= limit else text[:limit] + " …"
    return "\n".join("> " + (line.replace("|", "\\|") or " ") for line in (text or "(empty)").splitlines() or ["(empty)"])


def markdown(result: dict[str, Any], examples: Sequence[Any], generations: Sequence[Sequence[str]],
             summaries: Sequence[dict[str, Any]], with_chart: bool) -> str:
    gen = result["generation"]
    sft = conversations(result)
    best = next(s for s in result["scores"] if s["is_best"])
    out = [f"# Evaluation {result['evaluation_id']}", "",
           f"Task `{result['task_id']}` ({result['task_type']}), {len(result['scores'])} candidates, "
           f"{result['samples']} examples from {result['data_source'].replace('_', ' ')} (`{result['data_path']}`), "
           f"seed {result['seed']}, device {result.get('device', '?')}.", ""]
    if sft:
        mode = "greedy" if not gen.get("temperature") else (
            f"sampling: temperature {gen['temperature']}, top-p {gen['top_p']}, top-k {gen['top_k']}")
        out += [f"Generation: {mode}, repetition penalty {gen['repetition_penalty']}, at most "
                f"{gen['max_new_tokens']} new tokens, generation seed {gen['seed']}.", ""]
    out += [f"**Best: {best['label']}** (`{best['checkpoint_id']}`), composite {best['composite']:.4f}.", "",
            f"Verdict: {result['verdict']}.", ""]
    for warning in result.get("warnings") or []:
        out.append(f"- warning: {warning}")
    if result.get("warnings"):
        out.append("")
    headers = ["rank", "checkpoint", "step", "composite", "perplexity", "bits/byte"]
    if sft:
        headers += ["similarity", "coherence", "coverage"]
    preference = any(s.get("preference_pairs") for s in result["scores"])
    if preference:
        headers += ["preference accuracy", "mean margin", "pairs"]
    headers += ["Δ vs best", "p vs best"]
    out += ["| " + " | ".join(headers) + " |", "|" + "|".join("---:" if h not in ("checkpoint",) else ":---"
                                                             for h in headers) + "|"]
    for s in result["scores"]:
        row = [str(s["rank"]), ("**" + _cell(s["label"]) + "** ★" if s["is_best"] else _cell(s["label"]))
               + f" `{s['checkpoint_id']}`", str(s["step"]), _cell(s["composite"]), _cell(s["perplexity"], ".4g"),
               _cell(s["bits_per_byte"])]
        if sft:
            row += [_cell(s.get("semantic_similarity")), _cell(s.get("coherence")), _cell(s.get("coverage"))]
        if preference:
            row += [_cell(s.get("preference_accuracy"), ".3f"), _cell(s.get("preference_margin")),
                    _cell(s.get("preference_pairs"))]
        row += [_cell(s.get("diff_vs_best")) if not s["is_best"] else "-",
                _cell(s.get("p_vs_best"), ".3g") if not s["is_best"] else "-"]
        out.append("| " + " | ".join(row) + " |")
    out.append("")
    if with_chart:
        out += ["![Scores per checkpoint step](scores.png)", ""]
    weights = ", ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in result["weights"].items())
    out += ["## How the scores are computed", "",
            f"Composite = weighted mean of normalised metrics ({weights}); bits per byte enters as 2^-bpb (the "
            "geometric-mean probability per byte of the reference), similarity as max(0, cosine). Perplexity is token-weighted over the reference answer tokens only "
            "(prompt masked, as in training); bits per byte = total NLL / ln 2 / UTF-8 bytes of the answers. "
            "Similarity is the cosine of all-MiniLM-L6-v2 sentence embeddings of the generated and the reference "
            "answer; coherence is reference-free (repetition, degenerate output, sentence form and links); "
            "coverage is the recall of the reference's content words, reduced when the answer uses more than "
            f"{M.VERBOSITY_ALLOWANCE}× as many. Ranks: composite, then bits per byte, then the earlier step. "
            f"The verdict is a one-sided paired bootstrap ({result['bootstrap_replicates']} resamples of the "
            "examples) of best minus runner-up: below p = 0.05 the best beats the runner-up, otherwise it is a "
            "tie within noise. Full definitions: docs/evaluation.md in the modx repository.", "",
            "Files: `scores.csv` (one row per checkpoint), `examples.jsonl` (one line per checkpoint and example), "
            "`result.json`.", ""]
    if preference:
        out += ["Preference accuracy is the share of the pairs whose chosen answer gets the higher reward, the mean "
                "margin the mean of chosen minus rejected reward (dpo: beta x the log-probability ratio against the "
                "checkpoint's reference; orpo: lambda x the mean log-probability per answer token), as the trainer "
                "logs them. The composite scores each pair's prompt + chosen answer (as a conversation for "
                "conversational pairs); the ranking is the composite's. docs/preference.md.", ""]
    if sft and examples:
        out += ["## Sample generations", ""]
        for j in range(min(PREVIEW_EXAMPLES, len(examples))):
            ex = examples[j]
            prompt = next((m["content"] for m in reversed(ex.prompt) if m["role"] == "user"), "")
            out += [f"### Example {j + 1}", "", "Prompt:", "", _quote(prompt), "", "Reference:", "",
                    _quote(ex.reference), ""]
            for s, answers in zip(summaries, generations):
                out += [f"{s['label']} (`{s['checkpoint_id']}`):", "", _quote(answers[j] if answers else ""), ""]
    return "\n".join(out).rstrip() + "\n"
