/** Prepare (准备): pick the task type and a template, adjust parameters, validate against the
 * daemon (validate_only), see the estimates, then create (and start) the task. */
import { errorText, system, training } from "../api";
import { h, replace } from "../dom";
import { TaskType, type ParamValue } from "../gen/modx/v1/common_pb";
import type { GetParamSchemaResponse, ResolvedSetting, Template } from "../gen/modx/v1/training_pb";
import { sourceName } from "../first_run";
import { t } from "../i18n";
import { fieldOfError, paramText } from "../params";
import { go, replaceRoute, type Route } from "../router";
import { notify, section } from "../ui";
import { ParamForm } from "./prepare_form";
import { ReportPanel } from "./prepare_report";
import { stats } from "../stats";

const TYPES: [TaskType, string][] = [[TaskType.SFT, "sft"], [TaskType.PRETRAIN, "pretrain"], [TaskType.DPO, "dpo"],
                                     [TaskType.ORPO, "orpo"]];

export function mountPrepare(root: HTMLElement, route: Route): () => void {
  let type = TYPES.find(([, name]) => name === route.query.get("type"))?.[0] ?? TaskType.SFT;
  let schema: GetParamSchemaResponse | null = null;
  let form: ParamForm | null = null;
  let templateName = route.query.get("template") ?? "";
  let templates: Template[] = [];
  let alive = true;

  const report = new ReportPanel(() => estimate(true));
  const formBox = h("div", { class: "form-box" }, h("p", { class: "muted" }, t("loading")));
  const typeSelect = h("select", { id: "task-type", name: "type", onchange: () => {
    type = Number(typeSelect.value) as TaskType;
    templateName = "";
    load();
  } }, TYPES.map(([v, name]) => h("option", { value: v, selected: v === type }, t(`type.${name}` as "type.sft"))));
  const templateSelect = h("select", { id: "template", name: "template", onchange: () => {
    templateName = templateSelect.value;
    applyTemplate();
  } });
  const nameInput = h("input", { id: "task-name", name: "name", autocomplete: "off", placeholder: t("task_name_hint") });
  const templateNameInput = h("input", { id: "template-name", autocomplete: "off", placeholder: t("template_name") });
  const busy = (on: boolean) => root.querySelectorAll<HTMLButtonElement>(".actions button").forEach((b) => { b.disabled = on; });

  function syncRoute(): void {
    replaceRoute("prepare", "", { type: TYPES.find(([v]) => v === type)?.[1] ?? "sft",
                                  ...(templateName ? { template: templateName } : {}) });
  }

  async function load(): Promise<void> {
    syncRoute();
    report.clear();
    try {
      const [s, tl] = await Promise.all([training.getParamSchema({ type }), training.listTemplates({ type })]);
      if (!alive) return;
      schema = s;
      templates = tl.templates;
      replace(templateSelect,
              h("option", { value: "" }, t("template_default")),
              templates.map((tpl) => h("option", { value: tpl.name, selected: tpl.name === templateName },
                                       `${tpl.name}${tpl.builtin ? "" : " ★"}${tpl.description ? " — " + tpl.description : ""}`)));
      if (!templates.some((tpl) => tpl.name === templateName)) templateName = "";
      await applyTemplate();
    } catch (err) {
      replace(formBox, h("p", { class: "error-text" }, errorText(err)));
    }
  }

  async function applyTemplate(): Promise<void> {
    if (!schema) return;
    syncRoute();
    let params: Record<string, ParamValue> | undefined;
    try {
      if (templateName) params = (await training.getTemplate({ name: templateName })).template?.params;
    } catch (err) {
      notify(errorText(err));
    }
    if (!alive) return;
    const keep = form?.values() ?? new Map();
    form = new ParamForm(schema.params, schema.foldGroups, type);
    form.render(params, keep);
    replace(formBox, form.root);
    report.clear();
    stats.ready.prepare ??= performance.now();
  }

  /** Show a daemon refusal at the field it names, else as a notice. */
  function refused(err: unknown): void {
    const message = errorText(err);
    if (!message) return;
    const key = fieldOfError(message, form?.keys());
    if (!key || !form?.showError(key, message)) notify(message);
  }

  /** The report's settings, and the fields a rule filled say so. */
  function showSettings(settings: ResolvedSetting[]): void {
    form?.showAuto(settings.filter((s) => sourceName(s.source) === "auto")
      .map((s) => ({ key: s.key, value: paramText(s.value), reason: s.reason })));
  }

  function request() {
    return { type, template: templateName, params: form!.overrides(), name: nameInput.value.trim() };
  }

  async function validate(): Promise<boolean> {
    if (!form) return false;
    form.clearErrors();
    busy(true);
    try {
      const resp = await training.createTask({ ...request(), validateOnly: true });
      const task = resp.task;
      report.setEstimate(task?.quotaEstimate, resp.warnings,
                         { trainData: task?.trainData, evalData: task?.evalData, settings: task?.settings ?? [] }, true);
      showSettings(task?.settings ?? []);
      const modelDir = resp.task?.params["model_dir"];
      if (modelDir?.kind.case === "stringValue" && modelDir.kind.value) {
        system.getHardwareAdvice({ modelDir: modelDir.kind.value }).then((a) => report.setAdvice(a), () => report.setAdvice(undefined));
      }
      return true;
    } catch (err) {
      report.clear();
      refused(err);
      return false;
    } finally {
      busy(false);
    }
  }

  /** EstimateQuota; `calibrate` measures this host first (a short run, cached by the daemon). */
  async function estimate(calibrate = false): Promise<void> {
    if (!form) return;
    form.clearErrors();
    busy(true);
    if (calibrate) report.setCalibrating(true);
    try {
      const resp = await training.estimateQuota({ type, template: templateName, params: form.overrides(), calibrate });
      report.setEstimate(resp.estimate, resp.warnings,
                         { trainData: resp.trainData, evalData: resp.evalData, settings: resp.settings });
      showSettings(resp.settings);
    } catch (err) {
      if (calibrate) report.setCalibrating(false);
      refused(err);
    } finally {
      busy(false);
    }
  }

  async function create(start: boolean): Promise<void> {
    if (!form) return;
    form.clearErrors();
    busy(true);
    try {
      const created = await training.createTask(request());
      const task = created.task!;
      created.warnings.forEach((w) => notify(w.message, "info"));
      if (start) {
        const started = await training.startTask({ taskId: task.id });
        started.warnings.forEach((w) => notify(w.message, "info"));
      }
      notify(`${t("created")} ${task.id}`, "info");
      go("monitor", task.id);
    } catch (err) {
      refused(err);
    } finally {
      busy(false);
    }
  }

  async function saveTemplate(): Promise<void> {
    const name = templateNameInput.value.trim();
    if (!form || !name) {
      notify(t("template_name_needed"));
      return;
    }
    const exists = templates.some((tpl) => tpl.name === name && !tpl.builtin);
    if (exists && !confirm(t("template_overwrite").replace("{name}", name))) return;
    try {
      await training.saveTemplate({ name, type, params: form.templateValues(), overwrite: exists });
      notify(`${t("template_saved")} ${name}`, "info");
      templateName = name;
      await load();
    } catch (err) {
      refused(err);
    }
  }

  async function deleteTemplate(): Promise<void> {
    const tpl = templates.find((x) => x.name === templateName);
    if (!tpl || tpl.builtin || !confirm(t("template_delete_confirm").replace("{name}", tpl.name))) return;
    try {
      await training.deleteTemplate({ name: tpl.name });
      templateName = "";
      await load();
    } catch (err) {
      notify(errorText(err));
    }
  }

  replace(root, h("div", { class: "prepare-layout" },
    h("div", null,
      section(t("prepare.title"),
        h("div", { class: "row wrap" },
          h("label", { class: "field" }, h("span", { class: "label" }, t("task_type")), typeSelect),
          h("label", { class: "field" }, h("span", { class: "label" }, t("template")), templateSelect),
          h("label", { class: "field grow" }, h("span", { class: "label" }, t("task_name")), nameInput)),
        formBox),
      h("div", { class: "actions sticky" },
        h("button", { id: "validate", onclick: validate }, t("validate")),
        h("button", { id: "estimate", onclick: () => estimate() }, t("estimate")),
        h("button", { id: "create", onclick: () => create(false) }, t("create")),
        h("button", { id: "create-start", class: "primary", onclick: () => create(true) }, t("create_start")))),
    h("aside", null,
      section(t("report"), report.root),
      section(t("templates"),
        h("div", { class: "row" }, templateNameInput,
          h("button", { id: "save-template", onclick: saveTemplate }, t("template_save"))),
        h("button", { class: "link", id: "delete-template", onclick: deleteTemplate }, t("template_delete"))))));
  load();
  return () => { alive = false; };
}
