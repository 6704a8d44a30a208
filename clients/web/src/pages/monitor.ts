/** Monitor (监控): the task list with states on the left, one task's live (or historical) view on
 * the right. The list refreshes every few seconds; the task view streams its own events. */
import { errorText, training } from "../api";
import { h, replace } from "../dom";
import { TaskState } from "../gen/modx/v1/common_pb";
import type { Task } from "../gen/modx/v1/training_pb";
import { t } from "../i18n";
import { go, routeHash, type Route } from "../router";
import { percent } from "../format";
import { stateBadge, stateName, typeName } from "../ui";
import { TaskView } from "./monitor_task";

const FILTERS: [string, TaskState[]][] = [
  ["all", []],
  ["active", [TaskState.PENDING, TaskState.RUNNING, TaskState.STOPPING]],
  ["finished", [TaskState.COMPLETED, TaskState.STOPPED, TaskState.FAILED]],
  ["created", [TaskState.CREATED]],
];

export function mountMonitor(root: HTMLElement, route: Route): () => void {
  let filter = route.query.get("filter") ?? "all";
  let alive = true;
  const list = h("ul", { class: "task-list", id: "task-list" });
  const filterSelect = h("select", { "aria-label": t("filter"), onchange: () => { filter = filterSelect.value; refresh(); } },
    FILTERS.map(([name]) => h("option", { value: name, selected: name === filter }, t(`filter.${name}` as "filter.all"))));
  const detail = h("div", { class: "task-detail" });
  let view: TaskView | null = null;
  // The open task's progress as its stream reports it: newer than the polled list's.
  let live: { step: bigint; total: bigint; percent: number } | null = null;

  async function refresh(): Promise<void> {
    try {
      const states = FILTERS.find(([name]) => name === filter)?.[1] ?? [];
      const resp = await training.listTasks({ states, page: { pageSize: 500 } });
      if (!alive) return;
      renderList(resp.tasks);
      if (!route.taskId && resp.tasks.length) {
        // Live mode by default: the running task, else the most recent one.
        const running = resp.tasks.find((task) => task.state === TaskState.RUNNING) ?? resp.tasks[0];
        go("monitor", running.id);
      }
    } catch (err) {
      replace(list, h("li", { class: "error-text" }, errorText(err)));
    }
  }

  function progressText(task: Task): string {
    const own = task.id === route.taskId && live && live.step >= task.currentStep ? live : null;
    const [step, total, pct] = own ? [own.step, own.total, own.percent] : [task.currentStep, task.totalSteps, task.percent];
    return total > 0n ? `${step}/${total} · ${percent(pct)}` : "";
  }

  function summary(task: Task): string {
    return `${task.id} · ${typeName(task.type)} · ${progressText(task)}`;
  }

  function renderList(tasks: Task[]): void {
    if (!tasks.length) {
      replace(list, h("li", { class: "muted" }, t("no_tasks"), " ", h("a", { href: routeHash("prepare") }, t("page.prepare"))));
      return;
    }
    replace(list, tasks.map((task) => h("li", { class: task.id === route.taskId ? "selected" : "", "data-task": task.id },
      h("a", { href: routeHash("monitor", task.id), title: stateName(task.state) },
        h("div", { class: "row between" }, h("strong", null, task.name || task.id), stateBadge(task.state)),
        h("div", { class: "muted small", "data-summary": "" }, summary(task))))));
  }

  if (route.taskId) {
    view = new TaskView(route.taskId, () => refresh(), (step, total, pct) => {
      live = { step, total, percent: pct };
      const row = list.querySelector<HTMLElement>(`li[data-task="${CSS.escape(route.taskId!)}"] [data-summary]`);
      const task = view?.current();
      if (row && task) row.textContent = summary(task);
    });
    replace(detail, view.root);
  } else {
    replace(detail, h("p", { class: "muted" }, t("monitor.pick")));
  }
  replace(root, h("div", { class: "monitor-layout" },
    h("aside", { class: "card" }, h("div", { class: "row between" }, h("h2", null, t("tasks")), filterSelect), list),
    detail));
  refresh();
  const timer = setInterval(refresh, 3000);
  return () => {
    alive = false;
    clearInterval(timer);
    view?.destroy();
  };
}
