/** The per-example answers of a completed evaluation (EvalService.ListEvaluationExamples): a page
 * at a time, all candidates or one, each row the prompt, the generated answer, the reference and
 * the scores (pretraining: the text scored). */
import { errorText, evals } from "../api";
import { h, replace } from "../dom";
import type { EvalExample, Evaluation } from "../gen/modx/v1/eval_pb";
import { metric } from "../format";
import { t } from "../i18n";
import { section } from "../ui";

export const EXAMPLES_PAGE = 20;

function text(value: string, cls = ""): HTMLElement {
  return h("td", null, h("div", { class: `cell-text ${cls}` }, value));
}

function row(e: EvalExample): HTMLElement {
  const scores = [metric(e.composite), metric(e.perplexity), metric(e.semanticSimilarity)];
  const sft = e.prompt.length > 0 || !e.text;
  return h("tr", { "data-checkpoint": e.checkpointId, "data-example": e.example },
    h("td", null, e.label || e.checkpointId), h("td", null, String(e.example)), scores.map((s) => h("td", null, s)),
    sft ? [text(e.prompt.map((m) => `${m.role}: ${m.content}`).join("\n")), text(e.generation, "answer"), text(e.reference)]
        : h("td", { colspan: 3 }, h("div", { class: "cell-text" }, e.text)));
}

export function examplesSection(e: Evaluation): HTMLElement {
  const candidates = [...e.scores].sort((a, b) => Number(a.step) - Number(b.step));
  const filter = h("select", { id: "examples-checkpoint", "aria-label": t("checkpoint"), onchange: () => load(0) },
    h("option", { value: "" }, t("eval.all_candidates")),
    candidates.map((s) => h("option", { value: s.checkpointId }, `${s.label} · ${s.checkpointId}`)));
  const body = h("div", { id: "examples" });
  const info = h("span", { class: "muted small", id: "examples-page" });
  const prev = h("button", { id: "examples-prev", onclick: () => load(page - 1) }, t("prev"));
  const next = h("button", { id: "examples-next", onclick: () => load(page + 1) }, t("next"));
  let tokens = [""];  // the page token of each page reached so far (page 0: none)
  let page = 0;
  let asked = 0;

  async function load(target: number): Promise<void> {
    if (target === 0) tokens = [""];
    const mine = ++asked;
    prev.disabled = next.disabled = true;
    try {
      const resp = await evals.listEvaluationExamples({
        evaluationId: e.id, checkpointId: filter.value, page: { pageSize: EXAMPLES_PAGE, pageToken: tokens[target] } });
      if (mine !== asked) return;
      page = target;
      tokens[page + 1] = resp.nextPageToken;
      replace(body, resp.examples.length ? h("table", { class: "grid examples" },
        h("thead", null, h("tr", null, ["col.label", "col.example", "col.composite", "col.perplexity", "col.semantic_similarity",
          "col.prompt", "col.answer", "col.reference"].map((c) => h("th", null, t(c as "col.rank"))))),
        h("tbody", null, resp.examples.map(row))) : h("p", { class: "muted" }, t("eval.no_examples")));
      const first = page * EXAMPLES_PAGE;
      info.textContent = resp.examples.length ? `${first + 1}–${first + resp.examples.length}` : "";
      prev.disabled = page === 0;
      next.disabled = !resp.nextPageToken;
    } catch (err) {
      if (mine === asked) replace(body, h("p", { class: "error-text" }, errorText(err)));
    }
  }

  void load(0);
  return section(t("eval.examples"), h("div", { class: "row" }, filter, prev, next, info), body);
}
