/** The parameter form's logic, kept apart from the DOM so it is unit-tested: which fields a task
 * type shows and in which fold group, what a field shows for a value, what it sends back, and
 * which field a daemon error sentence names. Ranges and types are NOT checked here: the daemon
 * owns those rules and answers with a sentence naming `parameter <key>`, shown at the field. */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { type ParamValue, ParamValueSchema, TaskType } from "./gen/modx/v1/common_pb";
import { type ParamSpec, ParamType } from "./gen/modx/v1/training_pb";

export type ParamInit = MessageInitShape<typeof ParamValueSchema>;

/** The fold group a front end shows first and expanded. */
export const CORE_GROUP = "";

/** The value a field shows as text (lists joined by ", "). */
export function paramText(value: ParamValue | undefined): string {
  const kind = value?.kind;
  switch (kind?.case) {
    case "boolValue": return kind.value ? "true" : "false";
    case "intValue": return kind.value.toString();
    case "doubleValue": return formatNumber(kind.value);
    case "stringValue": return kind.value;
    case "listValue": return kind.value.values.join(", ");
    default: return "";
  }
}

/** Shortest text that reads back to the same double (2e-4, not 0.00019999999999999998). */
export function formatNumber(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const plain = String(x);
  const exp = x.toExponential().replace(/\.?0+e/, "e").replace("e+", "e");
  return exp.length < plain.length ? exp : plain;
}

/** The value a field sends: booleans and lists typed, everything else as the text the person
 * typed, which the daemon converts with the schema (and refuses with a sentence naming the key). */
export function paramFromInput(spec: ParamSpec, input: string | boolean): ParamInit {
  if (spec.type === ParamType.BOOL) {
    const on = typeof input === "boolean" ? input : input.trim().toLowerCase() === "true";
    return { kind: { case: "boolValue", value: on } };
  }
  const text = String(input);
  if (spec.type === ParamType.STRING_LIST) {
    const values = text.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
    return { kind: { case: "listValue", value: { values } } };
  }
  return { kind: { case: "stringValue", value: text.trim() } };
}

export function appliesTo(spec: ParamSpec, type: TaskType): boolean {
  return spec.appliesTo.length === 0 || type === TaskType.UNSPECIFIED || spec.appliesTo.includes(type);
}

/** The schema default of a parameter for a task type (use_lora: on for SFT, off for pretraining). */
export function defaultFor(spec: ParamSpec, type: TaskType): ParamValue | undefined {
  return spec.typeDefaults.find((d) => d.type === type)?.value ?? spec.defaultValue;
}

/** The value a field starts from: the template's own value, else the schema default. */
export function initialValue(spec: ParamSpec, type: TaskType,
                             template: Record<string, ParamValue> | undefined): string {
  const fromTemplate = template?.[spec.key];
  return paramText(fromTemplate ?? defaultFor(spec, type));
}

/** Parameters in display order: the core group first, then the fold groups in the order the
 * schema lists them; parameters keep the schema's order inside a group. */
export function groupParams(specs: ParamSpec[], foldGroups: string[],
                            type: TaskType): { group: string; params: ParamSpec[] }[] {
  const order = [CORE_GROUP, ...foldGroups.filter((g) => g !== CORE_GROUP)];
  const groups = new Map<string, ParamSpec[]>(order.map((g) => [g, []]));
  for (const spec of specs) {
    if (!appliesTo(spec, type)) continue;
    const group = groups.get(spec.foldGroup) ?? groups.set(spec.foldGroup, []).get(spec.foldGroup)!;
    group.push(spec);
  }
  return [...groups].filter(([, params]) => params.length > 0).map(([group, params]) => ({ group, params }));
}

/** The parameter a daemon error sentence names: "parameter lora_r must be ...",
 * "parameter model_dir: /x is a GGUF file ...", "unknown parameter 'lora_rr'". */
export function fieldOfError(message: string, known?: Iterable<string>): string | null {
  const keys = known ? new Set(known) : null;
  for (const m of message.matchAll(/\bparameter\s+'?([A-Za-z_][A-Za-z0-9_]*)'?/g)) {
    if (!keys || keys.has(m[1])) return m[1];
  }
  return null;
}

/** Only the fields the person changed from what the template gives are sent as overrides, so a
 * template's own (or auto-resolved) values stay the template's. */
export function overrides(specs: ParamSpec[], type: TaskType, initial: Map<string, string>,
                          current: Map<string, string | boolean>): Record<string, ParamInit> {
  const out: Record<string, ParamInit> = {};
  for (const spec of specs) {
    if (!appliesTo(spec, type) || !current.has(spec.key)) continue;
    const now = current.get(spec.key)!;
    const text = typeof now === "boolean" ? (now ? "true" : "false") : now.trim();
    const before = (initial.get(spec.key) ?? "").trim();
    if (text === before) continue;
    // An emptied number cannot be sent; an emptied path or text means "not set".
    if (text === "" && spec.type !== ParamType.PATH && spec.type !== ParamType.STRING) continue;
    out[spec.key] = paramFromInput(spec, now);
  }
  return out;
}
