import { test } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { type ParamValue, ParamValueSchema, TaskType } from "../src/gen/modx/v1/common_pb";
import { ParamSpecSchema, ParamType, type ParamSpec } from "../src/gen/modx/v1/training_pb";
import { defaultFor, fieldOfError, formatNumber, groupParams, initialValue, overrides, paramFromInput,
         paramText } from "../src/params";

type SpecExtra = { foldGroup?: string; appliesTo?: TaskType[]; defaultValue?: ParamValue;
                  typeDefaults?: { type: TaskType; value: ParamValue }[] };
const spec = (key: string, type: ParamType, extra: SpecExtra = {}): ParamSpec =>
  create(ParamSpecSchema, { key, type, ...extra });

test("values read as people type them", () => {
  assert.equal(paramText(create(ParamValueSchema, { kind: { case: "doubleValue", value: 2e-4 } })), "2e-4");
  assert.equal(paramText(create(ParamValueSchema, { kind: { case: "doubleValue", value: 0.1 } })), "0.1");
  assert.equal(paramText(create(ParamValueSchema, { kind: { case: "intValue", value: 512n } })), "512");
  assert.equal(paramText(create(ParamValueSchema, { kind: { case: "boolValue", value: false } })), "false");
  assert.equal(paramText(create(ParamValueSchema, { kind: { case: "listValue", value: { values: ["q_proj", "v_proj"] } } })),
               "q_proj, v_proj");
  assert.equal(paramText(undefined), "");
  assert.equal(formatNumber(1e-6), "1e-6");
  assert.equal(formatNumber(100), "100");
});

test("inputs are sent as text for the daemon to convert, except booleans and lists", () => {
  assert.deepEqual(paramFromInput(spec("lora_r", ParamType.INT), " 32 "), { kind: { case: "stringValue", value: "32" } });
  assert.deepEqual(paramFromInput(spec("lora_r", ParamType.INT), "abc"), { kind: { case: "stringValue", value: "abc" } });
  assert.deepEqual(paramFromInput(spec("fp16", ParamType.BOOL), false), { kind: { case: "boolValue", value: false } });
  assert.deepEqual(paramFromInput(spec("m", ParamType.STRING_LIST), "q_proj, ,v_proj,"),
                   { kind: { case: "listValue", value: { values: ["q_proj", "v_proj"] } } });
});

test("type defaults win over the plain default, templates over both", () => {
  const useLora = spec("use_lora", ParamType.BOOL, {
    defaultValue: create(ParamValueSchema, { kind: { case: "boolValue", value: true } }),
    typeDefaults: [{ type: TaskType.PRETRAIN, value: create(ParamValueSchema, { kind: { case: "boolValue", value: false } }) }],
  });
  assert.equal(paramText(defaultFor(useLora, TaskType.SFT)), "true");
  assert.equal(paramText(defaultFor(useLora, TaskType.PRETRAIN)), "false");
  assert.equal(initialValue(useLora, TaskType.SFT, { use_lora: create(ParamValueSchema, { kind: { case: "boolValue", value: false } }) }),
               "false");
});

test("groups: core first, fold groups in schema order, parameters of other types hidden", () => {
  const specs = [spec("a", ParamType.INT, { foldGroup: "save" }), spec("b", ParamType.INT),
                 spec("lora_r", ParamType.INT, { foldGroup: "", appliesTo: [TaskType.SFT] }),
                 spec("c", ParamType.INT, { foldGroup: "optional" })];
  const sft = groupParams(specs, ["", "optional", "advanced", "optimization", "save", "eval"], TaskType.SFT);
  assert.deepEqual(sft.map((g) => [g.group, g.params.map((p) => p.key)]), [["", ["b", "lora_r"]], ["optional", ["c"]], ["save", ["a"]]]);
  const pt = groupParams(specs, ["", "optional", "save"], TaskType.PRETRAIN);
  assert.deepEqual(pt[0].params.map((p) => p.key), ["b"]);
});

test("an error sentence points at the field it names", () => {
  const keys = ["lora_r", "model_dir", "eval_strategy"];
  assert.equal(fieldOfError("parameter lora_r must be between 1 and 512, got 0", keys), "lora_r");
  assert.equal(fieldOfError("parameter model_dir: /x/m.gguf is a GGUF file, which is for inference only", keys), "model_dir");
  assert.equal(fieldOfError("unknown parameter 'lora_rr' (did you mean lora_r?)", keys), null);
  assert.equal(fieldOfError("unknown parameter 'lora_rr'"), "lora_rr");
  assert.equal(fieldOfError("the quota is exhausted", keys), null);
});

test("only what the person changed is sent; emptied numbers are not", () => {
  const specs = [spec("lora_r", ParamType.INT), spec("eval_file", ParamType.PATH), spec("seed", ParamType.INT),
                 spec("fp16", ParamType.BOOL)];
  const initial = new Map([["lora_r", "16"], ["eval_file", "/d/eval.jsonl"], ["seed", "42"], ["fp16", "true"]]);
  const current = new Map<string, string | boolean>([["lora_r", "16"], ["eval_file", ""], ["seed", ""], ["fp16", false]]);
  assert.deepEqual(overrides(specs, TaskType.SFT, initial, current), {
    eval_file: { kind: { case: "stringValue", value: "" } },
    fp16: { kind: { case: "boolValue", value: false } },
  });
});
