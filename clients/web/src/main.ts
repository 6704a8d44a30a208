/** The studio shell: tabs for the seed's five pages, the language switch, the quota and daemon in
 * the status bar, and the token dialog when the daemon asks for one. */
import { errorText, onAuthNeeded, system, token } from "./api";
import { h, replace } from "./dom";
import { lang, setLang, t, type Key } from "./i18n";
import { PAGES, parseRoute, routeHash, type PageName, type Route } from "./router";
import { notify } from "./ui";
import { mountPrepare } from "./pages/prepare";
import { mountMonitor } from "./pages/monitor";
import { mountEvaluate } from "./pages/evaluate";
import { mountChat } from "./pages/chat";
import { mountPackage } from "./pages/package";
import "./style.css";

export type Unmount = () => void;
const MOUNT: Record<PageName, (root: HTMLElement, route: Route) => Unmount> = {
  prepare: mountPrepare, monitor: mountMonitor, evaluate: mountEvaluate, test: mountChat, package: mountPackage,
};
// Glyphs every system font has (emoji fonts are not everywhere, e.g. a server's headless browser).
const ICON: Record<PageName, string> = { prepare: "⚙", monitor: "↗", evaluate: "◔", test: "➤", package: "⬇" };

const tabs = h("nav", { class: "tabs", role: "tablist" });
const statusBar = h("div", { class: "status" });
const main = h("main", { id: "page" });
let unmount: Unmount | null = null;
let current: Route | null = null;

function renderTabs(active: PageName): void {
  replace(tabs, PAGES.map((p) => h("a", {
    href: routeHash(p, p === "prepare" ? "" : current?.taskId ?? ""), role: "tab", "data-page": p,
    "aria-selected": p === active ? "true" : "false", class: p === active ? "active" : "",
  }, h("span", { class: "icon", "aria-hidden": "true" }, ICON[p]), t(`page.${p}` as Key))));
}

function show(): void {
  const route = parseRoute(location.hash);
  if (current && unmount && current.page === route.page && current.taskId === route.taskId) return;
  unmount?.();
  current = route;
  renderTabs(route.page);
  replace(main);
  document.title = `${t(`page.${route.page}` as Key)} · modx studio`;
  unmount = MOUNT[route.page](main, route);
}

/** Re-render everything in the other language (pages re-mount; their state is in the URL). */
function switchLang(): void {
  setLang(lang() === "zh" ? "en" : "zh");
  renderHeader();
  unmount?.();
  unmount = null;
  show();
  refreshStatus();
}

const header = h("header");
function renderHeader(): void {
  document.documentElement.lang = lang() === "zh" ? "zh-CN" : "en";
  replace(header,
          h("div", { class: "brand" }, "modx", h("span", null, " studio")),
          tabs, statusBar,
          h("button", { class: "ghost", id: "lang", onclick: switchLang, title: t("switch_lang") },
            lang() === "zh" ? "English" : "中文"),
          h("button", { class: "ghost", id: "token-button", onclick: () => tokenDialog(""),
                        title: t("token.title") }, t("token.button")));
}

async function refreshStatus(): Promise<void> {
  try {
    const s = await system.getStatus({});
    replace(statusBar,
            h("span", { id: "quota", title: t("quota.title") }, `${t("quota")} ${s.quotaBalance}`),
            h("span", null, `${t("running")} ${s.tasksRunning} · ${t("pending")} ${s.tasksPending}`),
            h("span", { class: "muted" }, `modxd ${s.version}`));
    statusBar.classList.toggle("warn", s.quotaBalance <= 0n);
  } catch (err) {
    replace(statusBar, h("span", { class: "error-text" }, errorText(err) || t("offline")));
  }
}

let dialogOpen = false;
function tokenDialog(reason: string): void {
  if (dialogOpen) return;
  dialogOpen = true;
  const input = h("input", { type: "password", name: "token", autocomplete: "off", placeholder: "modx_…",
                             value: token.get() });
  const dialog = h("dialog", { class: "token-dialog" },
    h("form", { method: "dialog" },
      h("h2", null, t("token.title")),
      h("p", null, t("token.help")),
      reason ? h("p", { class: "error-text" }, reason) : null,
      input,
      h("div", { class: "row" },
        h("button", { value: "save", class: "primary" }, t("token.save")),
        h("button", { value: "clear" }, t("token.clear")),
        h("button", { value: "cancel" }, t("cancel")))));
  dialog.addEventListener("close", () => {
    dialogOpen = false;
    if (dialog.returnValue === "save") token.set(input.value);
    if (dialog.returnValue === "clear") token.set("");
    dialog.remove();
    if (dialog.returnValue === "save" || dialog.returnValue === "clear") {
      unmount?.();
      unmount = null;
      show();
      refreshStatus();
    }
  });
  document.body.appendChild(dialog);
  dialog.showModal();
  input.focus();
}

onAuthNeeded((message) => tokenDialog(message));
window.addEventListener("hashchange", show);
window.addEventListener("unhandledrejection", (ev) => notify(errorText(ev.reason)));
document.body.append(header, main);
renderHeader();
show();
refreshStatus();
setInterval(refreshStatus, 5000);
