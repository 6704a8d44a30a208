/** Evaluate (评估): pick two or more checkpoints of a task (and the base model), run an
 * evaluation, follow its progress, then read the ranking with the best and the tie call.
 * Earlier evaluations of the task are listed and open the same way. */
import { errorText, evals, isCanceled, training } from "../api";
import { h, replace } from "../dom";
import { downloadButton } from "../files";
import { JobState } from "../gen/modx/v1/common_pb";
import type { Evaluation } from "../gen/modx/v1/eval_pb";
import { dateTime, metric } from "../format";
import { examplesSection } from "./eval_examples";
import { t } from "../i18n";
import { replaceRoute, type Route } from "../router";
import { JOB_DONE, jobBadge, notify, numberField, progressBar, section, taskPicker } from "../ui";

export function mountEvaluate(root: HTMLElement, route: Route): () => void {
  let taskId = route.taskId;
  let alive = true;
  let abort = new AbortController();
  const picker = h("div", { id: "eval-checkpoints" });
  const history = h("div", { id: "eval-history" });
  const result = h("div", { id: "eval-result" });
  const settings = h("form", { class: "row wrap", id: "eval-settings", onsubmit: (e: Event) => e.preventDefault() },
    numberField(t("eval.samples"), "samples", "16", t("eval.samples_hint")),
    numberField(t("seed"), "seed", "0"),
    numberField(t("sampling.temperature"), "temperature", "0", t("eval.greedy")),
    numberField(t("sampling.max_new_tokens"), "max_new_tokens", "64"));
  const runButton = h("button", { id: "run-eval", class: "primary", onclick: () => run() }, t("eval.run"));

  async function pickTask(id: string): Promise<void> {
    taskId = id;
    replaceRoute("evaluate", id, route.query.get("eval") ? { eval: route.query.get("eval")! } : undefined);
    replace(picker);
    replace(history);
    if (!id) return;
    try {
      const [ck, ev] = await Promise.all([training.listCheckpoints({ taskId: id }), evals.listEvaluations({ taskId: id })]);
      if (!alive || id !== taskId) return;
      replace(picker,
        ck.checkpoints.length ? h("div", { class: "check-list" },
          ck.checkpoints.map((c) => h("label", { class: "check" },
            h("input", { type: "checkbox", name: "checkpoint", value: c.id, checked: true }),
            ` step ${c.step} · loss ${metric(c.loss)} `, h("span", { class: "muted small mono" }, c.id))),
          h("label", { class: "check" }, h("input", { type: "checkbox", name: "base", id: "include-base", checked: true }),
            ` ${t("eval.base")}`)) : h("p", { class: "muted" }, t("no_checkpoints")));
      renderHistory(ev.evaluations);
      const open = route.query.get("eval");
      if (open && ev.evaluations.some((e) => e.id === open)) follow(open);
    } catch (err) {
      replace(picker, h("p", { class: "error-text" }, errorText(err)));
    }
  }

  function renderHistory(list: Evaluation[]): void {
    replace(history, list.length ? h("table", { class: "grid" },
      h("thead", null, h("tr", null, [t("id"), t("state"), t("eval.best"), t("eval.verdict"), t("time")].map((c) => h("th", null, c)))),
      h("tbody", null, list.map((e) => h("tr", { "data-evaluation": e.id },
        h("td", null, h("button", { class: "link mono", onclick: () => follow(e.id) }, e.id)),
        h("td", null, jobBadge(e.state)), h("td", { class: "mono small" }, e.bestCheckpointId || "–"),
        h("td", null, e.verdict || "–"), h("td", null, dateTime(e.createTime)))))) : h("p", { class: "muted" }, t("eval.none")));
  }

  function num(name: string): number {
    return Number((settings.elements.namedItem(name) as HTMLInputElement).value);
  }

  async function run(): Promise<void> {
    const chosen = [...picker.querySelectorAll<HTMLInputElement>("input[name=checkpoint]:checked")].map((i) => i.value);
    const base = picker.querySelector<HTMLInputElement>("#include-base")?.checked ?? false;
    if (chosen.length + (base ? 1 : 0) < 2) {
      notify(t("eval.need_two"));
      return;
    }
    runButton.disabled = true;
    try {
      const resp = await evals.createEvaluation({
        taskId, checkpoints: chosen, includeBase: base, samples: num("samples"), seed: BigInt(Math.trunc(num("seed"))),
        generation: { temperature: num("temperature"), maxNewTokens: num("max_new_tokens") },
      });
      follow(resp.evaluation!.id);
    } catch (err) {
      notify(errorText(err));
    } finally {
      runButton.disabled = false;
    }
  }

  /** Stream an evaluation's progress, then show its result. */
  async function follow(id: string): Promise<void> {
    abort.abort();
    abort = new AbortController();
    const signal = abort.signal;
    replaceRoute("evaluate", taskId, { eval: id });
    const bar = h("div", { id: "eval-progress" }, progressBar(0, t("eval.starting")));
    const log = h("pre", { class: "log short" });
    replace(result, section(`${t("evaluation")} ${id}`, bar, log));
    let seq = 0n;
    for (let attempt = 0; alive && !signal.aborted; attempt++) {
      try {
        for await (const r of evals.watchEvaluation({ evaluationId: id, afterSeq: seq }, { signal })) {
          const ev = r.event!;
          seq = ev.seq;
          const p = ev.payload;
          if (p.case === "progress") {
            const v = p.value;
            const done = v.checkpointIndex * v.exampleCount + v.exampleIndex;
            const total = Math.max(1, v.checkpointCount * v.exampleCount);
            replace(bar, progressBar(100 * done / total,
              `${t("checkpoint")} ${v.checkpointIndex + 1}/${v.checkpointCount} · ${t("example")} ${v.exampleIndex}/${v.exampleCount}`));
          } else if (p.case === "log") {
            log.appendChild(h("div", null, `${p.value.level} ${p.value.message}`));
            log.scrollTop = log.scrollHeight;
          } else if (p.case === "state" && JOB_DONE.has(p.value)) {
            break;
          }
        }
        const evaluation = (await evals.getEvaluation({ evaluationId: id })).evaluation!;
        if (!JOB_DONE.has(evaluation.state)) continue;  // the stream ended early: resume after `seq`
        if (alive && !signal.aborted) showResult(evaluation, bar);
        const list = await evals.listEvaluations({ taskId });
        if (alive) renderHistory(list.evaluations);
        return;
      } catch (err) {
        if (isCanceled(err) || !alive) return;
        if (attempt > 5) {
          notify(errorText(err));
          return;
        }
        await new Promise((res) => setTimeout(res, 500 * (attempt + 1)));
      }
    }
  }

  function showResult(e: Evaluation, bar: HTMLElement): void {
    replace(bar, h("p", null, jobBadge(e.state), " ", e.stateReason));
    if (e.state !== JobState.COMPLETED) return;
    const cols = ["rank", "label", "step", "perplexity", "bits_per_byte", "semantic_similarity", "coherence", "coverage", "composite"];
    const scores = [...e.scores].sort((a, b) => a.rank - b.rank);
    result.appendChild(section(t("eval.ranking"),
      h("p", { id: "eval-verdict", class: "verdict" }, h("strong", null, `${t("eval.best")}: ${e.bestCheckpointId}`), " · ", e.verdict),
      h("table", { class: "grid", id: "ranking" },
        h("thead", null, h("tr", null, cols.map((c) => h("th", null, t(`col.${c}` as "col.rank"))))),
        h("tbody", null, scores.map((s) => h("tr", { class: s.isBest ? "best" : "", "data-checkpoint": s.checkpointId },
          h("td", null, s.isBest ? `★ ${s.rank}` : String(s.rank)), h("td", null, s.label), h("td", null, String(s.step)),
          h("td", null, metric(s.perplexity)), h("td", null, metric(s.bitsPerByte)), h("td", null, metric(s.semanticSimilarity)),
          h("td", null, metric(s.coherence)), h("td", null, metric(s.coverage)), h("td", null, h("strong", null, metric(s.composite))))))),
      h("div", { class: "row", id: "eval-downloads" },
        EVAL_FILES.map(([name, label, id]) => downloadButton(t(label), `${e.id}-${name}`,
          (offset, signal) => evals.readEvaluationFile({ evaluationId: e.id, name, offset }, { signal }), { id })))));
    result.appendChild(examplesSection(e));
  }

  replace(root, h("div", { class: "stack" },
    section(t("page.evaluate"),
      h("div", { class: "row" }, h("label", { class: "field grow" }, h("span", { class: "label" }, t("task")),
        taskPicker(taskId, pickTask, (task) => task.checkpointsSaved > 0))),
      picker, settings, h("div", { class: "actions" }, runButton)),
    result,
    section(t("eval.history"), history)));
  return () => {
    alive = false;
    abort.abort();
  };
}

/** The files of an evaluation the page offers (EvalService.ReadEvaluationFile names). */
const EVAL_FILES = [["scores.csv", "eval.csv", "download-csv"], ["report.md", "eval.report", "download-report"],
                    ["examples.jsonl", "eval.examples_file", "download-examples"]] as const;
