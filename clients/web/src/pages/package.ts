/** Package (打包): export a checkpoint as GGUF (quantization types; merge the LoRA adapter or keep
 * it separate), follow the job, then read its files (sizes, SHA-256) and the verification table. */
import { errorText, isCanceled, packages, training } from "../api";
import { h, replace } from "../dom";
import { downloadButton } from "../files";
import { JobState } from "../gen/modx/v1/common_pb";
import { type Package, QuantType } from "../gen/modx/v1/package_pb";
import { bytes, dateTime, metric } from "../format";
import { t } from "../i18n";
import { replaceRoute, type Route } from "../router";
import { hasMerged, JOB_DONE, jobBadge, notify, progressBar, section, taskPicker } from "../ui";

const QUANTS = Object.values(QuantType).filter((v): v is QuantType => typeof v === "number" && v !== QuantType.UNSPECIFIED);
const DEFAULT_QUANTS = new Set([QuantType.Q8_0]);

export function mountPackage(root: HTMLElement, route: Route): () => void {
  let taskId = route.taskId;
  let alive = true;
  let abort = new AbortController();
  const checkpointSelect = h("select", { id: "package-checkpoint", "aria-label": t("checkpoint") });
  const history = h("div", { id: "package-history" });
  const result = h("div", { id: "package-result" });
  const quants = h("fieldset", { class: "check-list", id: "quant-types" }, h("legend", null, t("pkg.quant")),
    QUANTS.map((q) => h("label", { class: "check" },
      h("input", { type: "checkbox", name: "quant", value: q, checked: DEFAULT_QUANTS.has(q) }), ` ${QuantType[q]}`)));
  const merge = h("fieldset", { class: "row", id: "merge" }, h("legend", null, t("pkg.lora")),
    h("label", { class: "check" }, h("input", { type: "radio", name: "merge", value: "merge", checked: true }), ` ${t("pkg.merge")}`),
    h("label", { class: "check" }, h("input", { type: "radio", name: "merge", value: "adapter" }), ` ${t("pkg.adapter")}`));
  const outputDir = h("input", { id: "package-output", class: "mono", autocomplete: "off", placeholder: t("pkg.output_hint") });
  const skipVerify = h("input", { type: "checkbox", id: "skip-verification" });
  const createButton = h("button", { id: "create-package", class: "primary", onclick: () => create() }, t("pkg.create"));

  async function pickTask(id: string): Promise<void> {
    taskId = id;
    replaceRoute("package", id, route.query.get("package") ? { package: route.query.get("package")! } : undefined);
    replace(checkpointSelect);
    replace(history);
    if (!id) return;
    try {
      const [task, ck, pk] = await Promise.all([training.getTask({ taskId: id }), training.listCheckpoints({ taskId: id }),
                                                packages.listPackages({ taskId: id })]);
      if (!alive || id !== taskId) return;
      const best = task.task?.bestCheckpointId;
      const star = (id: string) => (id === best ? " ★" : "");
      replace(checkpointSelect,
        ck.checkpoints.slice().reverse().map((c) =>
          h("option", { value: c.id, selected: c.id === best }, `step ${c.step} · loss ${metric(c.loss)}${star(c.id)}`)),
        hasMerged(task.task) ? h("option", { value: "merged", selected: best === "merged" }, `${t("merged_model")}${star("merged")}`) : null,
        h("option", { value: "base", selected: best === "base" }, `${t("eval.base")}${star("base")}`));
      renderHistory(pk.packages);
      const open = route.query.get("package");
      if (open && pk.packages.some((p) => p.id === open)) follow(open);
    } catch (err) {
      notify(errorText(err));
    }
  }

  function renderHistory(list: Package[]): void {
    replace(history, list.length ? h("table", { class: "grid" },
      h("thead", null, h("tr", null, [t("id"), t("state"), t("checkpoint"), t("pkg.quant"), t("time")].map((c) => h("th", null, c)))),
      h("tbody", null, list.map((p) => h("tr", { "data-package": p.id },
        h("td", null, h("button", { class: "link mono", onclick: () => follow(p.id) }, p.id)), h("td", null, jobBadge(p.state)),
        h("td", { class: "mono small" }, p.checkpointId), h("td", null, p.quantTypes.map((q) => QuantType[q]).join(", ")),
        h("td", null, dateTime(p.createTime)))))) : h("p", { class: "muted" }, t("pkg.none")));
  }

  async function create(): Promise<void> {
    const types = [...quants.querySelectorAll<HTMLInputElement>("input[name=quant]:checked")].map((i) => Number(i.value) as QuantType);
    if (!types.length) {
      notify(t("pkg.need_quant"));
      return;
    }
    const mergeValue = merge.querySelector<HTMLInputElement>("input[name=merge]:checked")?.value === "merge";
    createButton.disabled = true;
    try {
      const resp = await packages.createPackage({ taskId, checkpoint: checkpointSelect.value, quantTypes: types, merge: mergeValue,
                                                  outputDir: outputDir.value.trim(), skipVerification: skipVerify.checked });
      follow(resp.package!.id);
    } catch (err) {
      notify(errorText(err));
    } finally {
      createButton.disabled = false;
    }
  }

  async function follow(id: string): Promise<void> {
    abort.abort();
    abort = new AbortController();
    const signal = abort.signal;
    replaceRoute("package", taskId, { package: id });
    const bar = h("div", { id: "package-progress" }, progressBar(0, t("eval.starting")));
    const log = h("pre", { class: "log short" });
    replace(result, section(`${t("package")} ${id}`, bar, log));
    let seq = 0n;
    for (let attempt = 0; alive && !signal.aborted; attempt++) {
      try {
        for await (const r of packages.watchPackage({ packageId: id, afterSeq: seq }, { signal })) {
          const ev = r.event!;
          seq = ev.seq;
          const p = ev.payload;
          if (p.case === "progress") {
            const v = p.value;
            const pct = v.tensorsTotal > 0n ? (100 * Number(v.tensorsDone)) / Number(v.tensorsTotal) : 0;
            replace(bar, progressBar(pct, `${v.phase} ${QuantType[v.quantType] ?? ""} · ${v.tensorsDone}/${v.tensorsTotal} · ${bytes(v.bytesWritten)}`));
          } else if (p.case === "log") {
            log.appendChild(h("div", null, `${p.value.level} ${p.value.message}`));
            log.scrollTop = log.scrollHeight;
          } else if (p.case === "state" && JOB_DONE.has(p.value)) {
            break;
          }
        }
        const pkg = (await packages.getPackage({ packageId: id })).package!;
        if (!JOB_DONE.has(pkg.state)) continue;
        if (alive && !signal.aborted) showResult(pkg, bar);
        const list = await packages.listPackages({ taskId });
        if (alive) renderHistory(list.packages);
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

  function showResult(p: Package, bar: HTMLElement): void {
    replace(bar, h("p", null, jobBadge(p.state), " ", p.stateReason, " ", h("span", { class: "muted mono small" }, p.outputDir)));
    if (p.state !== JobState.COMPLETED) return;
    result.appendChild(section(t("pkg.files"),
      h("table", { class: "grid", id: "package-files" },
        h("thead", null, h("tr", null, [t("pkg.file"), t("pkg.kind"), t("pkg.quant"), t("size"), "SHA-256", ""].map((c) => h("th", null, c)))),
        h("tbody", null, p.files.map((f) => h("tr", { "data-kind": f.kind },
          h("td", { class: "mono small" }, f.path), h("td", null, f.kind), h("td", null, f.quantType ? QuantType[f.quantType] : ""),
          h("td", null, bytes(f.sizeBytes)), h("td", { class: "mono small sha" }, f.sha256),
          h("td", null, downloadButton(t("download"), f.path.split("/").pop() || f.path,
            (offset, signal) => packages.readPackageFile({ packageId: p.id, path: f.path, offset }, { signal }),
            { class: "download-file" }))))))));
    result.appendChild(section(t("pkg.verification"), p.verifications.length ? h("table", { class: "grid", id: "verification" },
      h("thead", null, h("tr", null, [t("pkg.quant"), t("pkg.tokenizer"), "top-1", "max Δlogit", "mean Δlogit", t("pkg.prompts")].map((c) => h("th", null, c)))),
      h("tbody", null, p.verifications.map((v) => h("tr", null,
        h("td", null, QuantType[v.quantType]), h("td", { class: v.tokenizerMatch ? "ok-text" : "error-text" }, v.tokenizerMatch ? "✓" : "✗"),
        h("td", null, `${(100 * v.top1Agreement).toFixed(1)}%`), h("td", null, metric(v.maxLogitDiff)), h("td", null, metric(v.meanLogitDiff)),
        h("td", null, String(v.prompts)))))) : h("p", { class: "muted" }, t("pkg.not_verified"))));
  }

  replace(root, h("div", { class: "stack" },
    section(t("page.package"),
      h("div", { class: "row wrap" },
        h("label", { class: "field grow" }, h("span", { class: "label" }, t("task")), taskPicker(taskId, pickTask)),
        h("label", { class: "field grow" }, h("span", { class: "label" }, t("checkpoint")), checkpointSelect)),
      quants, merge,
      h("div", { class: "row wrap" }, h("label", { class: "field grow" }, h("span", { class: "label" }, t("pkg.output")), outputDir),
        h("label", { class: "check" }, skipVerify, ` ${t("pkg.skip_verify")}`)),
      h("div", { class: "actions" }, createButton)),
    result,
    section(t("pkg.history"), history)));
  return () => {
    alive = false;
    abort.abort();
  };
}
