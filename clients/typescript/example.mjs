#!/usr/bin/env node
// A modx client in Node.js with the generated stubs (lib/, from `make stubs`) and @grpc/grpc-js:
// create a training task, start it, follow its watch stream to the end, then stream a chat
// reply from its last checkpoint.
//
//   cd clients/typescript && npm ci
//   export MODX_ADDRESS=unix:///run/modx/modxd.sock      # or host:port (always TLS)
//   export MODX_TOKEN_FILE=$HOME/.config/modx/token      # or MODX_TOKEN; never a flag
//   node example.mjs --train-file /srv/modx/data/chat.jsonl --model-dir /srv/modx/models/tiny \
//        --output-dir /srv/modx/outputs/example --set num_train_epochs=1 --prompt "Hello"
//
// TLS for host:port: MODX_TLS_CA (server CA), MODX_TLS_CERT + MODX_TLS_KEY (mutual TLS),
// MODX_TLS_SERVER_NAME (override the name checked in the server certificate).
// --json prints one JSON object per line (events, chat deltas, then a summary) instead of text.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { homedir } from "node:os";
import { join } from "node:path";

const require = createRequire(import.meta.url);
const grpc = require("@grpc/grpc-js");
const { common, training, inference, system } = require("./lib/index.js");

function parseArgs(argv) {
  const args = { type: "sft", set: [], prompt: "Hello! Who are you?", maxNewTokens: 32, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === "--train-file") args.trainFile = value();
    else if (a === "--model-dir") args.modelDir = value();
    else if (a === "--output-dir") args.outputDir = value();
    else if (a === "--type") args.type = value();
    else if (a === "--set") args.set.push(value());
    else if (a === "--prompt") args.prompt = value();
    else if (a === "--max-new-tokens") args.maxNewTokens = Number(value());
    else if (a === "--json") args.json = true;
    else if (a === "--help" || a === "-h") {
      console.log("usage: node example.mjs --train-file F --model-dir D --output-dir O [--type sft|pretrain] " +
                  "[--set KEY=VALUE]... [--prompt TEXT] [--max-new-tokens N] [--json]");
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  for (const key of ["trainFile", "modelDir", "outputDir"]) {
    if (!args[key]) throw new Error(`--${key.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase())} is required`);
  }
  return args;
}

function readToken() {
  const token = (process.env.MODX_TOKEN || "").trim();
  if (token) return token;
  const file = (process.env.MODX_TOKEN_FILE || "").trim();
  return file ? readFileSync(file, "utf8").trim() : "";
}

function target() {
  const address = (process.env.MODX_ADDRESS || "").trim();
  if (address) return address;
  const state = process.env.MODX_STATE_DIR || join(process.env.XDG_STATE_HOME || join(homedir(), ".local", "state"), "modx");
  return `unix://${join(state, "modxd.sock")}`;
}

function channel(address) {
  const options = { "grpc.max_receive_message_length": 64 * 1024 * 1024 };
  if (address.startsWith("unix:")) return { creds: grpc.credentials.createInsecure(), options };
  const read = (name) => (process.env[name] ? readFileSync(process.env[name]) : null);
  if (process.env.MODX_TLS_SERVER_NAME) options["grpc.ssl_target_name_override"] = process.env.MODX_TLS_SERVER_NAME;
  return { creds: grpc.credentials.createSsl(read("MODX_TLS_CA"), read("MODX_TLS_KEY"), read("MODX_TLS_CERT")), options };
}

// Promisify a unary call of a generated client.
const unary = (client, method, request, metadata) =>
  new Promise((resolve, reject) =>
    client[method](request, metadata, { deadline: Date.now() + 60_000 }, (err, res) => (err ? reject(err) : resolve(res))));

const stateName = (s) => common.taskStateToJSON(s).replace("TASK_STATE_", "").toLowerCase();

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const out = (obj, text) => (args.json ? console.log(JSON.stringify(obj)) : text !== null && console.log(text));
  const address = target();
  const { creds, options } = channel(address);
  const metadata = new grpc.Metadata();
  // Names this client, so its watch streams get their own allowance (max_watchers_per_client)
  // instead of sharing the one of every unnamed local caller.
  metadata.set("modx-client-id", `node-example-${process.pid}-${Math.random().toString(16).slice(2, 10)}`);
  const token = readToken();
  if (token) metadata.set("authorization", `Bearer ${token}`);

  const sys = new system.SystemServiceClient(address, creds, options);
  const tr = new training.TrainingServiceClient(address, creds, options);
  const inf = new inference.InferenceServiceClient(address, creds, options);

  const status = await unary(sys, "getStatus", system.GetStatusRequest.fromPartial({}), metadata);
  out({ status: { version: status.version, quota_balance: status.quotaBalance } },
      `modxd ${status.version} at ${address}, quota balance ${status.quotaBalance}`);

  const params = {
    train_file: { kind: { $case: "stringValue", stringValue: args.trainFile } },
    model_dir: { kind: { $case: "stringValue", stringValue: args.modelDir } },
    output_dir: { kind: { $case: "stringValue", stringValue: args.outputDir } },
  };
  for (const kv of args.set) {
    const at = kv.indexOf("=");
    if (at < 1) throw new Error(`--set takes KEY=VALUE, got ${kv}`);
    params[kv.slice(0, at)] = { kind: { $case: "stringValue", stringValue: kv.slice(at + 1) } };
  }
  const type = args.type === "pretrain" ? common.TaskType.TASK_TYPE_PRETRAIN : common.TaskType.TASK_TYPE_SFT;
  const created = await unary(tr, "createTask", training.CreateTaskRequest.fromPartial({ type, params, name: "node-example" }), metadata);
  const taskId = created.task.id;
  out({ created: { task_id: taskId, checkpoints: Number(created.task.quotaEstimate?.checkpoints ?? 0) } },
      `created ${taskId}: ${created.task.quotaEstimate?.explanation ?? ""}`);
  for (const w of created.warnings) out({ warning: w }, `warning: ${w.message}`);

  const started = await unary(tr, "startTask", training.StartTaskRequest.fromPartial({ taskId }), metadata);
  out({ started: { task_id: taskId, state: stateName(started.task.state) } }, `started ${taskId}: ${stateName(started.task.state)}`);

  // Follow the watch stream: history first, then live events; it ends when the task is terminal.
  let finalState = "";
  let lastCheckpoint = "";
  let events = 0;
  const watch = tr.watchTask(training.WatchTaskRequest.fromPartial({ taskId }), metadata);
  for await (const response of watch) {
    const ev = response.event;
    events++;
    const p = ev.payload;
    if (!p) continue;
    if (p.$case === "stateChange") {
      finalState = stateName(p.stateChange.toState);
      out({ seq: Number(ev.seq), state: finalState, reason: p.stateChange.reason }, `state ${finalState} (${p.stateChange.reason})`);
    } else if (p.$case === "metrics") {
      const m = p.metrics;
      out({ seq: Number(ev.seq), step: Number(m.step), loss: m.loss ?? null },
          m.loss === undefined ? null : `step ${m.step}: loss ${m.loss.toFixed(4)}`);
    } else if (p.$case === "checkpointSaved") {
      lastCheckpoint = p.checkpointSaved.id;
      out({ seq: Number(ev.seq), checkpoint: lastCheckpoint, step: Number(p.checkpointSaved.step) },
          `checkpoint ${lastCheckpoint} at step ${p.checkpointSaved.step}`);
    } else if (p.$case === "warning") {
      out({ seq: Number(ev.seq), warning: p.warning.code }, `warning: ${p.warning.message}`);
    }
  }
  out({ finished: { task_id: taskId, state: finalState, events } }, `task ${taskId} ${finalState} after ${events} events`);
  if (finalState !== "completed") {
    console.error(`example: task ${taskId} ended ${finalState}`);
    process.exit(2);
  }

  // Stream a chat reply from the last checkpoint, token by token.
  const chatRequest = inference.ChatRequest.fromPartial({
    taskId,
    target: { $case: "checkpoint", checkpoint: lastCheckpoint },
    messages: [{ role: "user", content: args.prompt }],
    sampling: { temperature: 0, maxNewTokens: args.maxNewTokens },
  });
  let chat = { status: "ok", text: "", deltas: 0 };
  if (!args.json) process.stdout.write(`chat (${lastCheckpoint}): `);
  try {
    for await (const response of inf.chat(chatRequest, metadata)) {
      const p = response.payload;
      if (p?.$case === "delta") {
        chat.deltas++;
        chat.text += p.delta.text;
        if (args.json) out({ delta: p.delta.text }, null);
        else process.stdout.write(p.delta.text);
      } else if (p?.$case === "done") {
        chat.finish = inference.finishReasonToJSON(p.done.finishReason);
        chat.completion_tokens = p.done.completionTokens;
        if (!args.json) console.log(`\n[${p.done.completionTokens} tokens, ${chat.finish}]`);
      }
    }
  } catch (err) {
    if (err.code !== grpc.status.UNIMPLEMENTED) throw err;
    chat = { status: "unimplemented", details: err.details };
    if (!args.json) console.log(`\nchat is not available on this daemon: ${err.details}`);
  }
  out({ summary: { task_id: taskId, state: finalState, events, last_checkpoint: lastCheckpoint, chat } }, null);
  sys.close(); tr.close(); inf.close();
}

main().catch((err) => {
  const code = err.code !== undefined ? `${grpc.status[err.code] ?? err.code}: ` : "";
  console.error(`example: ${code}${err.details ?? err.message}`);
  process.exit(1);
});
