/** The parameter form rendered from GetParamSchema: the core fields open, each fold group in a
 * <details>, every field with its label (zh/en), default, range, unit, help and an error slot
 * where the daemon's sentence about that parameter is shown. */
import { h, replace } from "../dom";
import type { ParamValue } from "../gen/modx/v1/common_pb";
import { TaskType } from "../gen/modx/v1/common_pb";
import { type ParamSpec, ParamType } from "../gen/modx/v1/training_pb";
import { lang, t, type Key } from "../i18n";
import { CORE_GROUP, defaultFor, formatNumber, groupParams, initialValue, overrides, paramText,
         type ParamInit } from "../params";

export class ParamForm {
  readonly root = h("div", { class: "param-form" });
  private inputs = new Map<string, HTMLInputElement | HTMLSelectElement>();
  private errors = new Map<string, HTMLElement>();
  private autoNotes = new Map<string, HTMLElement>();
  private initial = new Map<string, string>();

  constructor(private specs: ParamSpec[], private foldGroups: string[], private type: TaskType) {}

  /** Render with the values of `template` (schema defaults where it has none); keeps the paths the
   * person typed, which templates do not hold. */
  render(template: Record<string, ParamValue> | undefined, keep: Map<string, string | boolean> = new Map()): void {
    this.inputs.clear();
    this.errors.clear();
    this.autoNotes.clear();
    this.initial.clear();
    const groups = groupParams(this.specs, this.foldGroups, this.type).map(({ group, params }) => {
      const fields = params.map((spec) => {
        const start = initialValue(spec, this.type, template);
        this.initial.set(spec.key, start);
        // The files typed in stay when another template is loaded (templates hold settings, not paths).
        const kept = spec.type === ParamType.PATH ? keep.get(spec.key) : undefined;
        return this.field(spec, kept !== undefined && !(template && spec.key in template) ? kept : start);
      });
      if (group === CORE_GROUP) return h("div", { class: "group core", "data-group": "core" }, fields);
      return h("details", { class: "group", "data-group": group },
               h("summary", null, t(`group.${group}` as Key) || group), h("div", { class: "fields" }, fields));
    });
    replace(this.root, groups);
  }

  private field(spec: ParamSpec, value: string | boolean): HTMLElement {
    const id = `p-${spec.key}`;
    let input: HTMLInputElement | HTMLSelectElement;
    if (spec.type === ParamType.BOOL) {
      input = h("input", { id, name: spec.key, type: "checkbox",
                           checked: typeof value === "boolean" ? value : value === "true" });
    } else if (spec.type === ParamType.CHOICE) {
      input = h("select", { id, name: spec.key },
                spec.choices.map((c) => h("option", { value: c, selected: c === value }, c)));
    } else {
      const numeric = spec.type === ParamType.INT || spec.type === ParamType.FLOAT;
      input = h("input", { id, name: spec.key, value: String(value), autocomplete: "off", spellcheck: "false",
                           inputmode: numeric ? "decimal" : null,
                           class: spec.type === ParamType.PATH ? "mono" : null,
                           placeholder: spec.type === ParamType.STRING_LIST ? "q_proj, v_proj" : null });
    }
    input.addEventListener("input", () => this.edited(spec.key));
    input.addEventListener("change", () => this.edited(spec.key));
    this.inputs.set(spec.key, input);
    const error = h("div", { class: "field-error", id: `${id}-error`, role: "alert" });
    this.errors.set(spec.key, error);
    const autoNote = h("small", { class: "auto-note", id: `${id}-auto` });
    this.autoNotes.set(spec.key, autoNote);
    const label = lang() === "zh" ? spec.labelZh : spec.labelEn;
    return h("div", { class: `field${spec.type === ParamType.BOOL ? " bool" : ""}`, "data-key": spec.key },
      h("label", { for: id, class: "label" }, label, spec.required ? h("span", { class: "req" }, " *") : null,
        h("code", { class: "key" }, spec.key)),
      input,
      h("small", { class: "hint" }, this.hint(spec)),
      spec.help ? h("small", { class: "help" }, spec.help) : null,
      autoNote, error);
  }

  private hint(spec: ParamSpec): string {
    const parts: string[] = [];
    const def = paramText(defaultFor(spec, this.type));
    if (def !== "") parts.push(`${t("default")} ${def}`);
    if (spec.min !== undefined || spec.max !== undefined) {
      parts.push(`${t("range")} ${spec.min !== undefined ? formatNumber(spec.min) : "…"}–${
        spec.max !== undefined ? formatNumber(spec.max) : "…"}`);
    }
    if (spec.unit) parts.push(spec.unit);
    return parts.join(" · ");
  }

  /** Every field's current value (text, or a boolean for checkboxes). */
  values(): Map<string, string | boolean> {
    const out = new Map<string, string | boolean>();
    for (const [key, input] of this.inputs) {
      out.set(key, input instanceof HTMLInputElement && input.type === "checkbox" ? input.checked : input.value);
    }
    return out;
  }

  /** What differs from the loaded template: the overrides a request sends. */
  overrides(): Record<string, ParamInit> {
    return overrides(this.specs, this.type, this.initial, this.values());
  }

  /** Every field that has a value, except paths (for saving a template: a template is a set of
   * settings reused across data sets and models, not a copy of one task's files). */
  templateValues(): Record<string, ParamInit> {
    const specs = this.specs.filter((s) => s.type !== ParamType.PATH);
    return overrides(specs, this.type, new Map(), this.values());
  }

  keys(): string[] {
    return [...this.inputs.keys()];
  }

  /** Show `message` at the field it names; false when the form has no such field. */
  showError(key: string, message: string): boolean {
    const slot = this.errors.get(key);
    const input = this.inputs.get(key);
    if (!slot || !input) return false;
    slot.textContent = message;
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", slot.id);
    const details = input.closest("details");
    if (details) details.open = true;
    input.scrollIntoView({ block: "center" });
    input.focus();
    return true;
  }

  clearError(key: string): void {
    const slot = this.errors.get(key);
    if (slot) slot.textContent = "";
    this.inputs.get(key)?.removeAttribute("aria-invalid");
  }

  /** Say at each field the daemon chose automatically what it chose and why ("auto: 6 — 66
   * examples…"); the input keeps its value, so the rule stays in charge until the person types one. */
  showAuto(chosen: { key: string; value: string; reason: string }[]): void {
    for (const note of this.autoNotes.values()) {
      note.textContent = "";
      note.classList.remove("stale");
      note.title = "";
    }
    for (const { key, value, reason } of chosen) {
      const note = this.autoNotes.get(key);
      if (note) note.textContent = `${t("auto_note")}: ${value}${reason ? ` — ${reason}` : ""}`;
    }
  }

  /** The person changed `key`: its error and its automatic note no longer hold (a typed value is
   * explicit and wins over the rule); the other automatic values were chosen for the old settings,
   * so they say they are stale until the next validate or estimate. */
  private edited(key: string): void {
    this.clearError(key);
    const own = this.autoNotes.get(key);
    if (own?.textContent) {
      own.textContent = "";
      own.classList.remove("stale");
    }
    for (const note of this.autoNotes.values()) {
      if (note.textContent && !note.classList.contains("stale")) {
        note.classList.add("stale");
        note.title = t("auto_stale");
        note.append(h("span", { class: "stale-mark" }, ` (${t("auto_stale")})`));
      }
    }
  }

  clearErrors(): void {
    for (const key of this.errors.keys()) this.clearError(key);
  }
}
