/** Hash routes: `#/<page>/<task id>?<query>`, so a reload or a shared link opens the same view. */
export const PAGES = ["prepare", "monitor", "evaluate", "test", "package"] as const;
export type PageName = (typeof PAGES)[number];

export interface Route { page: PageName; taskId: string; query: URLSearchParams }

export function parseRoute(hash: string): Route {
  const [path, query = ""] = hash.replace(/^#\/?/, "").split("?", 2);
  const [page, taskId = ""] = path.split("/");
  const known = (PAGES as readonly string[]).includes(page) ? (page as PageName) : "prepare";
  return { page: known, taskId: decodeURIComponent(taskId), query: new URLSearchParams(query) };
}

export function routeHash(page: PageName, taskId = "", query?: Record<string, string>): string {
  const q = query ? new URLSearchParams(query).toString() : "";
  return `#/${page}${taskId ? "/" + encodeURIComponent(taskId) : ""}${q ? "?" + q : ""}`;
}

/** Change the URL without a navigation (keeps the view; a reload comes back to it). */
export function replaceRoute(page: PageName, taskId = "", query?: Record<string, string>): void {
  history.replaceState(null, "", routeHash(page, taskId, query));
}

export function go(page: PageName, taskId = "", query?: Record<string, string>): void {
  location.hash = routeHash(page, taskId, query);
}
