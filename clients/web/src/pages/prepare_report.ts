/** The Prepare page's report panel: what the daemon says about a parameter set before anything
 * runs. Today that is the quota estimate (steps, checkpoints against the balance), the warnings of
 * a validate-only create, the memory guidance for the model (GetHardwareAdvice), and issue 19's first-run
 * explanations: the data report of each file, the run estimate (time once calibrated, peak memory)
 * and every setting with its source (the automatic ones with their reason). */
import { h, replace } from "../dom";
import type { Warning } from "../gen/modx/v1/common_pb";
import type { GetHardwareAdviceResponse } from "../gen/modx/v1/system_pb";
import type { DataReport, QuotaEstimate, ResolvedSetting } from "../gen/modx/v1/training_pb";
import { bytes, paramCount } from "../format";
import { t } from "../i18n";
import { dataReportView, runEstimateView, settingsView } from "./first_run_view";

/** What validate-only and EstimateQuota return beside the quota estimate. */
export interface FirstRun {
  trainData?: DataReport;
  evalData?: DataReport;
  settings: ResolvedSetting[];
}

export class ReportPanel {
  readonly root = h("div", { class: "report", id: "report", "aria-live": "polite" });
  private estimate: QuotaEstimate | undefined;
  private warnings: Warning[] = [];
  private advice: GetHardwareAdviceResponse | undefined;
  private validated = false;
  private firstRun: FirstRun = { settings: [] };
  private calibrating = false;

  /** `onCalibrate`: asks for a calibrated estimate (EstimateQuota calibrate=true). */
  constructor(private onCalibrate: () => void) {}

  clear(): void {
    this.estimate = undefined;
    this.firstRun = { settings: [] };
    this.calibrating = false;
    this.warnings = [];
    this.advice = undefined;
    this.validated = false;
    this.render();
  }

  setEstimate(estimate: QuotaEstimate | undefined, warnings: Warning[], firstRun: FirstRun, validated = false): void {
    this.estimate = estimate;
    this.firstRun = firstRun;
    this.calibrating = false;
    this.warnings = warnings;
    this.validated = validated;
    this.render();
  }

  setCalibrating(on: boolean): void {
    this.calibrating = on;
    this.render();
  }

  setAdvice(advice: GetHardwareAdviceResponse | undefined): void {
    this.advice = advice;
    this.render();
  }

  private render(): void {
    const e = this.estimate;
    const rows: [string, string][] = e ? [
      [t("est.examples"), String(e.numExamples)],
      [t("est.steps_per_epoch"), String(e.stepsPerEpoch)],
      [t("est.total_steps"), String(e.totalSteps)],
      [t("est.checkpoints"), String(e.checkpoints)],
      [t("est.balance"), String(e.balance)],
    ] : [];
    const a = this.advice;
    const run = e?.run;
    const { trainData, evalData, settings } = this.firstRun;
    replace(this.root,
      this.validated ? h("p", { class: "ok-text", id: "validated" }, "✓ ", t("est.valid")) : null,
      run && run.totalSteps ? runEstimateView(run, this.calibrating ? undefined : this.onCalibrate) : null,
      this.calibrating ? h("p", { class: "muted", id: "calibrating" }, t("run.calibrating")) : null,
      settings.length ? settingsView(settings) : null,
      [trainData, evalData].map((d) => (d && d.field ? dataReportView(d) : null)),
      e ? h("div", { class: "estimate" },
        h("h3", null, t("est.quota")),
        h("table", { class: "kv" }, rows.map(([k, v]) => h("tr", null, h("th", null, k), h("td", null, v)))),
        h("p", { class: e.fits ? "ok-text" : "error-text", id: "quota-fit" },
          e.fits ? t("est.fits") : t("est.does_not_fit")),
        e.explanation ? h("p", { class: "muted" }, e.explanation) : null) : null,
      a ? h("div", { class: "advice" },
        h("h3", null, t("est.memory")),
        h("p", null, `${t("est.params")} ${paramCount(a.paramsBillion)} · ${a.guidance?.sizeClass ?? ""}`),
        a.guidance ? h("p", null, `LoRA ≈ ${bytes(a.guidance.loraBytes)} · ${t("est.full")} ≈ ${bytes(a.guidance.fullBytes)}`) : null,
        a.devices.map((d) => h("p", { class: d.loraFits ? "ok-text" : "error-text" },
          `${d.device?.name ?? "?"}: ${d.advice}`)),
        a.recommendation ? h("p", { class: "muted" }, a.recommendation) : null) : null,
      this.warnings.length ? h("div", { class: "warnings" },
        h("h3", null, t("warnings")),
        h("ul", null, this.warnings.map((w) => h("li", { "data-code": w.code }, h("code", null, w.code), " ", w.message)))) : null,
      !e && !a && !this.warnings.length && !this.validated ? h("p", { class: "muted" }, t("est.none_yet")) : null);
  }
}
