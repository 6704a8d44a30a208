/** Test (测试): chat with a checkpoint, the base model or a package of a task, streamed token by
 * token, with every sampling parameter and a system prompt; a second pane sends the same prompt to
 * another target so two answers are read side by side. */
import { errorText, inference, isCanceled, packages, training } from "../api";
import { h, replace } from "../dom";
import { JobState } from "../gen/modx/v1/common_pb";
import { QuantType } from "../gen/modx/v1/package_pb";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { FinishReason, type ChatRequest, type SamplingParamsSchema } from "../gen/modx/v1/inference_pb";
import { enumName, metric } from "../format";
import { t } from "../i18n";
import { replaceRoute, type Route } from "../router";
import { hasMerged, notify, numberField, section, taskPicker } from "../ui";

type Target = ChatRequest["target"];
interface Turn { role: "user" | "assistant"; content: string }
/** What both panes send with the same prompt. */
interface Settings { systemPrompt: string; sampling: MessageInitShape<typeof SamplingParamsSchema> }

/** One conversation with one target. */
class ChatPane {
  readonly root: HTMLElement;
  private turns: Turn[] = [];
  private box = h("div", { class: "conversation", "aria-live": "polite" });
  private targetSelect = h("select", { class: "target", "aria-label": t("chat.target") });
  private taskId = "";
  private abort: AbortController | null = null;

  constructor(readonly name: string, taskId: string, preferred: string) {
    const picker = taskPicker(taskId, (id) => this.pickTask(id, preferred));
    this.root = h("div", { class: "chat-pane card", "data-pane": name },
      h("div", { class: "row wrap" }, h("label", { class: "field grow" }, h("span", { class: "label" }, t("task")), picker),
        h("label", { class: "field grow" }, h("span", { class: "label" }, t("chat.target")), this.targetSelect)),
      this.box);
  }

  get task(): string {
    return this.taskId;
  }

  private async pickTask(id: string, preferred: string): Promise<void> {
    this.taskId = id;
    if (!id) return replace(this.targetSelect);
    try {
      const [task, ck, pk] = await Promise.all([training.getTask({ taskId: id }), training.listCheckpoints({ taskId: id }),
                                                packages.listPackages({ taskId: id })]);
      replace(this.targetSelect,
        ck.checkpoints.slice().reverse().map((c) => h("option", { value: `checkpoint:${c.id}` }, `${t("checkpoint")} step ${c.step}`)),
        hasMerged(task.task) ? h("option", { value: "checkpoint:merged" }, t("merged_model")) : null,
        h("option", { value: "base:" }, t("eval.base")),
        pk.packages.filter((p) => p.state === JobState.COMPLETED).map((p) =>
          h("option", { value: `package:${p.id}` }, `${t("package")} ${p.id} (${p.quantTypes.map((q) => QuantType[q]).join(", ")})`)));
      if (preferred && [...this.targetSelect.options].some((o) => o.value === preferred)) this.targetSelect.value = preferred;
    } catch (err) {
      notify(errorText(err));
    }
  }

  target(): Target {
    const [kind, value] = this.targetSelect.value.split(/:(.*)/s, 2);
    if (kind === "base") return { case: "base", value: true };
    if (kind === "package") return { case: "packageId", value };
    return { case: "checkpoint", value };
  }

  targetValue(): string {
    return this.targetSelect.value;
  }

  clear(): void {
    this.stop();
    this.turns = [];
    replace(this.box);
  }

  stop(): void {
    this.abort?.abort();
    this.abort = null;
  }

  /** Send the conversation plus `text` and stream the reply into a new bubble. */
  async send(text: string, base: Settings): Promise<void> {
    if (!this.taskId || !this.targetSelect.value) {
      notify(t("chat.pick_target"));
      return;
    }
    this.turns.push({ role: "user", content: text });
    this.box.appendChild(h("div", { class: "bubble user" }, text));
    const reply = h("div", { class: "bubble assistant streaming" });
    const meta = h("div", { class: "meta muted small" });
    this.box.append(reply, meta);
    this.abort = new AbortController();
    let answer = "";
    try {
      const stream = inference.chat({ ...base, taskId: this.taskId, target: this.target(),
                                      messages: this.turns.map((m) => ({ role: m.role, content: m.content })) },
                                    { signal: this.abort.signal });
      for await (const r of stream) {
        if (r.payload.case === "delta") {
          answer += r.payload.value.text;
          reply.textContent = answer;
          this.box.scrollTop = this.box.scrollHeight;
        } else if (r.payload.case === "done") {
          const d = r.payload.value;
          answer = d.text || answer;
          reply.textContent = answer;
          meta.textContent = `${enumName(FinishReason, d.finishReason).replace("finish_reason_", "")} · ${d.completionTokens} tok · ` +
            `${t("chat.ttft")} ${metric(d.timeToFirstTokenMs, 3)} ms · ${metric(d.tokensPerSecond, 3)} tok/s · ${d.modelKey}`;
        }
      }
    } catch (err) {
      if (!isCanceled(err)) {
        meta.textContent = errorText(err);
        meta.className = "meta error-text small";
      } else {
        meta.textContent = t("chat.stopped");
      }
    } finally {
      reply.classList.remove("streaming");
      this.turns.push({ role: "assistant", content: answer });
      this.abort = null;
    }
  }
}

const SAMPLING: [string, string, string][] = [
  ["temperature", "sampling.temperature", "0.7"], ["top_p", "sampling.top_p", "0.9"], ["top_k", "sampling.top_k", "40"],
  ["repetition_penalty", "sampling.repetition_penalty", "1.1"], ["max_new_tokens", "sampling.max_new_tokens", "128"],
  ["seed", "seed", ""],
];

export function mountChat(root: HTMLElement, route: Route): () => void {
  const a = new ChatPane("a", route.taskId, route.query.get("a") ?? "");
  const b = new ChatPane("b", route.taskId, route.query.get("b") ?? "base:");
  const compare = h("input", { type: "checkbox", id: "compare", checked: route.query.get("compare") === "1",
                               onchange: () => layout() });
  const panes = h("div", { class: "chat-panes" });
  const system = h("textarea", { id: "system-prompt", rows: 2, placeholder: t("chat.system_hint") });
  const sampling = h("form", { class: "row wrap", id: "sampling", onsubmit: (e: Event) => e.preventDefault() },
    SAMPLING.map(([name, label, value]) => numberField(t(label as "seed"), name, value)),
    h("label", { class: "field" }, h("span", { class: "label" }, t("sampling.stop")),
      h("input", { name: "stop", autocomplete: "off", placeholder: "###, </s>" })));
  const input = h("textarea", { id: "message", rows: 3, placeholder: t("chat.message_hint"),
                                onkeydown: (e: Event) => {
                                  const k = e as KeyboardEvent;
                                  if (k.key === "Enter" && !k.shiftKey) { e.preventDefault(); send(); }
                                } });

  function layout(): void {
    replace(panes, a.root, compare.checked ? b.root : null);
    panes.classList.toggle("split", compare.checked);
  }

  function field(name: string): string {
    return (sampling.elements.namedItem(name) as HTMLInputElement).value.trim();
  }

  /** Empty fields are left out: the daemon applies its defaults (see inference.proto). */
  function request(): Settings {
    const n = (name: string) => (field(name) === "" ? undefined : Number(field(name)));
    const seed = field("seed");
    return {
      systemPrompt: system.value,
      sampling: { temperature: n("temperature"), topP: n("top_p"), topK: n("top_k"),
                  repetitionPenalty: n("repetition_penalty"), maxNewTokens: n("max_new_tokens"),
                  seed: seed === "" ? undefined : BigInt(Math.trunc(Number(seed))),
                  stop: field("stop").split(",").map((s) => s.trim()).filter(Boolean) },
    };
  }

  function send(): void {
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    replaceRoute("test", a.task, { a: a.targetValue(), ...(compare.checked ? { compare: "1", b: b.targetValue() } : {}) });
    const base = request();
    void a.send(text, base);
    if (compare.checked) void b.send(text, base);
  }

  layout();
  replace(root, h("div", { class: "stack" },
    section(t("page.test"),
      h("label", { class: "field" }, h("span", { class: "label" }, t("chat.system")), system),
      h("details", { class: "group", open: true }, h("summary", null, t("chat.sampling")), sampling),
      h("label", { class: "check" }, compare, ` ${t("chat.compare")}`)),
    panes,
    h("div", { class: "card chat-input" }, input,
      h("div", { class: "row" },
        h("button", { id: "send", class: "primary", onclick: send }, t("chat.send")),
        h("button", { id: "stop-chat", onclick: () => { a.stop(); b.stop(); } }, t("stop")),
        h("button", { id: "clear-chat", onclick: () => { a.clear(); b.clear(); } }, t("chat.clear"))))));
  return () => {
    a.stop();
    b.stop();
  };
}
