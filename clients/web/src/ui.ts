/** Widgets every page uses: notices, state badges, progress bars, the task picker. */
import { training, errorText } from "./api";
import { h, replace } from "./dom";
import { JobState, TaskState, TaskType } from "./gen/modx/v1/common_pb";
import type { Task } from "./gen/modx/v1/training_pb";
import { enumName } from "./format";
import { t, type Key } from "./i18n";

let noticeBox: HTMLElement | null = null;

/** A notice in the corner; errors stay until closed, information goes by itself. */
export function notify(message: string, kind: "error" | "info" = "error"): void {
  if (!message) return;
  if (!noticeBox) {
    noticeBox = h("div", { class: "notices", role: "status", "aria-live": "polite" });
    document.body.appendChild(noticeBox);
  }
  const close = h("button", { class: "link", "aria-label": t("close"), onclick: () => note.remove() }, "×");
  const note = h("div", { class: `notice ${kind}` }, h("span", null, message), close);
  noticeBox.appendChild(note);
  if (kind === "info") setTimeout(() => note.remove(), 5000);
}

/** Report a failed call (a cancelled one is not a failure). */
export function failed(err: unknown): void {
  notify(errorText(err));
}

export function stateName(state: TaskState): string {
  return t(`state.${enumName(TaskState, state)}` as Key);
}

export function stateBadge(state: TaskState): HTMLElement {
  const name = enumName(TaskState, state);
  return h("span", { class: `badge state-${name}`, "data-state": name }, stateName(state));
}

export function jobBadge(state: JobState): HTMLElement {
  const name = enumName(JobState, state);
  return h("span", { class: `badge job-${name}`, "data-state": name }, t(`job.${name}` as Key));
}

export const TERMINAL = new Set([TaskState.COMPLETED, TaskState.STOPPED, TaskState.FAILED]);
export const JOB_DONE = new Set([JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED]);

/** Whether the task wrote a merged model (merge_lora_after_training, once completed), which Chat and
 * CreatePackage take as the checkpoint "merged". */
export function hasMerged(task: Task | undefined): boolean {
  const v = task?.params["merge_lora_after_training"]?.kind;
  return task?.state === TaskState.COMPLETED && v?.case === "boolValue" && v.value;
}

export function progressBar(pct: number, label = ""): HTMLElement {
  const clamped = Math.max(0, Math.min(100, pct));
  return h("div", { class: "progress", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100,
                    "aria-valuenow": clamped.toFixed(1) },
           h("div", { class: "bar", style: `width:${clamped}%` }), h("span", null, label));
}

/** "sft", "pretrain", "dpo", "orpo": the proto enum's name in lower case. */
export function typeName(type: TaskType): string {
  return enumName(TaskType, type);
}

export function taskLabel(task: Task): string {
  return `${task.name || task.id} · ${typeName(task.type)} · ${stateName(task.state)}`;
}

/** A <select> of the daemon's tasks; `accept` filters, `onPick` runs on change (and once for the
 * preselected task). */
export function taskPicker(selected: string, onPick: (taskId: string) => void,
                           accept: (task: Task) => boolean = () => true): HTMLSelectElement {
  const select = h("select", { class: "task-picker", "aria-label": t("task"),
                               onchange: () => onPick(select.value) });
  replace(select, h("option", { value: "" }, t("loading")));
  training.listTasks({ page: { pageSize: 500 } }).then((resp) => {
    const tasks = resp.tasks.filter(accept);
    replace(select, h("option", { value: "" }, tasks.length ? t("pick_task") : t("no_tasks")),
            tasks.map((task) => h("option", { value: task.id, selected: task.id === selected }, taskLabel(task))));
    if (selected && tasks.some((task) => task.id === selected)) onPick(selected);
  }, (err) => notify(errorText(err)));
  return select;
}

export function section(title: string, ...children: (Node | string | null | false)[]): HTMLElement {
  return h("section", { class: "card" }, h("h2", null, title), ...children);
}

/** A labelled number input for the sampling/evaluation settings forms. */
export function numberField(label: string, name: string, value: string, hint = ""): HTMLElement {
  return h("label", { class: "field" }, h("span", { class: "label" }, label),
           h("input", { name, value, inputmode: "decimal", autocomplete: "off" }),
           hint ? h("small", { class: "hint" }, hint) : null);
}
