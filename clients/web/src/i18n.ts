/** Chinese and English text of the studio. Parameter labels are NOT here: they come from
 * GetParamSchema (label_zh / label_en), so the form and the daemon never disagree. The language
 * is the person's choice (localStorage), first guessed from the browser. */

const en = {
  "page.prepare": "Prepare", "page.monitor": "Monitor", "page.evaluate": "Evaluate", "page.test": "Test",
  "page.package": "Package",
  "state.unspecified": "unknown", "state.created": "created", "state.pending": "pending", "state.running": "running",
  "state.stopping": "stopping", "state.stopped": "stopped", "state.completed": "completed", "state.failed": "failed",
  "job.unspecified": "unknown", "job.pending": "pending", "job.running": "running", "job.completed": "completed",
  "job.failed": "failed", "job.cancelled": "cancelled",
  "group.optional": "Optional", "group.advanced": "Advanced", "group.optimization": "Optimization", "group.save": "Saving",
  "group.eval": "Evaluation",
  "type.sft": "SFT (supervised fine-tuning)", "type.pretrain": "Pretraining",
  "type.dpo": "DPO (preference pairs)", "type.orpo": "ORPO (preference pairs, no reference)",
  "filter.all": "All", "filter.active": "Active", "filter.finished": "Finished", "filter.created": "Not started",
  "col.rank": "Rank", "col.label": "Checkpoint", "col.step": "Step", "col.perplexity": "Perplexity",
  "col.bits_per_byte": "Bits/byte", "col.semantic_similarity": "Similarity", "col.coherence": "Coherence",
  "col.coverage": "Coverage", "col.composite": "Composite",
  cancel: "Cancel", close: "Close", loading: "Loading…", offline: "daemon unreachable", switch_lang: "切换到中文",
  quota: "Quota", "quota.title": "Training quota units left (one per saved checkpoint)", running: "running",
  pending: "pending",
  "token.title": "Access token", "token.help": "This daemon needs a token (modxd token create). It is kept in this tab only (sessionStorage).",
  "token.button": "Token", "token.save": "Use token", "token.clear": "Forget token",
  task: "Task", tasks: "Tasks", pick_task: "Pick a task…", no_tasks: "No tasks yet.", id: "ID", state: "State",
  time: "Time", step: "Step", epoch: "Epoch", eta: "ETA", size: "Size", seed: "Seed", reason: "Reason",
  checkpoint: "Checkpoint", checkpoints: "Checkpoints", no_checkpoints: "No checkpoints yet.", warnings: "Warnings",
  logs: "Log", parameters: "Parameters", points: "Points", deleted: "deleted", created: "Created", created_at: "created",
  default: "default", range: "range", example: "example", evaluation: "Evaluation", package: "Package",
  filter: "Filter", merged_model: "Merged model (merge_lora_after_training)",
  "prepare.title": "New training task", task_type: "Training type", template: "Template",
  template_default: "Default template of the type", task_name: "Name", task_name_hint: "optional, e.g. support-bot-v2",
  validate: "Validate", estimate: "Estimate quota", create: "Create", create_start: "Create and start",
  report: "Check before start", templates: "Templates", template_name: "template name",
  template_save: "Save as template", template_delete: "Delete the selected user template",
  template_saved: "Template saved:", template_name_needed: "Give the template a name.",
  template_overwrite: "Replace your template “{name}”?", template_delete_confirm: "Delete the template “{name}”?",
  "est.valid": "The daemon accepts these parameters and data.", "est.quota": "Quota estimate",
  "est.examples": "Examples", "est.steps_per_epoch": "Steps per epoch", "est.total_steps": "Total steps",
  "est.checkpoints": "Checkpoints (quota units)", "est.balance": "Quota balance", "est.fits": "The quota is enough.",
  "est.does_not_fit": "The quota is NOT enough for every checkpoint: the task would stop when it runs out.",
  "est.memory": "Memory guidance", "est.params": "Parameters:", "est.full": "full fine-tuning",
  "est.none_yet": "Validate to see the estimates and any warnings about the data.",
  "monitor.pick": "Pick a task on the left.", "stream.connecting": "connecting…", "stream.live": "● live",
  "stream.retry": "reconnecting…", start: "Start", stop: "Stop", resume: "Resume", "resume.last": "last checkpoint",
  delete: "Delete", delete_files: "also its files", delete_confirm: "Delete task {id} and its records?",
  delete_confirm_files: "Delete task {id}, its records AND the files it wrote?", download_logs: "Download log",
  download_metrics: "Metrics CSV",
  "eval.samples": "Samples", "eval.samples_hint": "examples per checkpoint", "eval.greedy": "0 = greedy",
  "eval.run": "Run evaluation", "eval.base": "Base model", "eval.best": "Best", "eval.verdict": "Verdict",
  "eval.need_two": "Pick at least two: checkpoints, or a checkpoint and the base model.", "eval.starting": "starting…",
  "eval.ranking": "Ranking", "eval.csv": "Download CSV", "eval.report": "Download report",
  "eval.examples_file": "Download answers (JSONL)", "eval.examples": "Per-example answers",
  "eval.all_candidates": "All candidates", "eval.no_examples": "No examples.", prev: "Previous", next: "Next",
  download: "Download", "col.example": "#", "col.prompt": "Prompt", "col.answer": "Answer", "col.reference": "Reference",
  "eval.history": "Evaluations of this task", "eval.none": "No evaluations yet.",
  "chat.target": "Model", "chat.pick_target": "Pick a task and a model first.", "chat.system": "System prompt",
  "chat.system_hint": "e.g. You are a concise assistant.", "chat.sampling": "Sampling",
  "chat.compare": "Compare two models side by side", "chat.message_hint": "Message (Enter to send, Shift+Enter for a new line)",
  "chat.send": "Send", "chat.clear": "Clear", "chat.stopped": "stopped", "chat.ttft": "first token",
  "sampling.temperature": "Temperature", "sampling.top_p": "Top-p", "sampling.top_k": "Top-k",
  "sampling.repetition_penalty": "Repetition penalty", "sampling.max_new_tokens": "Max new tokens", "sampling.stop": "Stop strings",
  "pkg.quant": "Quantization", "pkg.lora": "LoRA adapter", "pkg.merge": "Merge into the base weights",
  "pkg.adapter": "Keep as a separate adapter GGUF", "pkg.output": "Output dir", "pkg.output_hint": "default: <task output>/packages/<id>",
  "pkg.skip_verify": "Skip verification", "pkg.create": "Create package", "pkg.need_quant": "Pick at least one quantization type.",
  "pkg.files": "Files", "pkg.file": "File", "pkg.kind": "Kind", "pkg.verification": "Verification (GGUF vs the checkpoint)",
  "pkg.tokenizer": "Tokenizer", "pkg.prompts": "Prompts", "pkg.not_verified": "Not verified.",
  "pkg.history": "Packages of this task", "pkg.none": "No packages yet.",
};

export type Key = keyof typeof en;

const zh: Record<Key, string> = {
  "page.prepare": "准备", "page.monitor": "监控", "page.evaluate": "评估", "page.test": "测试", "page.package": "打包",
  "state.unspecified": "未知", "state.created": "已创建", "state.pending": "等待中", "state.running": "训练中",
  "state.stopping": "正在停止", "state.stopped": "已停止", "state.completed": "已完成", "state.failed": "失败",
  "job.unspecified": "未知", "job.pending": "等待中", "job.running": "进行中", "job.completed": "已完成", "job.failed": "失败",
  "job.cancelled": "已取消",
  "group.optional": "可选参数", "group.advanced": "高级参数", "group.optimization": "优化参数", "group.save": "保存策略",
  "group.eval": "评估策略",
  "type.sft": "SFT（监督微调）", "type.pretrain": "预训练",
  "type.dpo": "DPO（偏好对）", "type.orpo": "ORPO（偏好对，无参考模型）",
  "filter.all": "全部", "filter.active": "进行中", "filter.finished": "已结束", "filter.created": "未启动",
  "col.rank": "排名", "col.label": "检查点", "col.step": "步数", "col.perplexity": "困惑度", "col.bits_per_byte": "每字节比特",
  "col.semantic_similarity": "语义相似度", "col.coherence": "连贯性", "col.coverage": "覆盖率", "col.composite": "综合得分",
  cancel: "取消", close: "关闭", loading: "加载中…", offline: "无法连接守护进程", switch_lang: "Switch to English",
  quota: "配额", "quota.title": "剩余训练配额（每保存一个检查点消耗 1 个）", running: "训练中", pending: "等待中",
  "token.title": "访问令牌", "token.help": "此守护进程需要令牌（modxd token create）。令牌仅保存在当前标签页（sessionStorage）。",
  "token.button": "令牌", "token.save": "使用令牌", "token.clear": "清除令牌",
  task: "任务", tasks: "任务列表", pick_task: "选择任务…", no_tasks: "还没有任务。", id: "ID", state: "状态", time: "时间",
  step: "步数", epoch: "轮次", eta: "预计剩余时间", size: "大小", seed: "随机种子", reason: "原因", checkpoint: "检查点",
  checkpoints: "检查点", no_checkpoints: "还没有检查点。", warnings: "警告", logs: "训练日志", parameters: "任务参数",
  points: "数据点", deleted: "已删除", created: "已创建", created_at: "创建于", default: "默认", range: "范围",
  example: "样本", evaluation: "评估", package: "打包", filter: "筛选",
  merged_model: "合并后的模型（训练后合并LoRA权重）",
  "prepare.title": "新建训练任务", task_type: "训练类型", template: "参数模板", template_default: "该类型的默认模板",
  task_name: "名称", task_name_hint: "可选，例如 客服助手-v2", validate: "校验", estimate: "配额预估", create: "创建",
  create_start: "创建并开始", report: "开始前检查", templates: "参数模板", template_name: "模板名称",
  template_save: "保存为模板", template_delete: "删除所选用户模板", template_saved: "模板已保存：",
  template_name_needed: "请填写模板名称。", template_overwrite: "替换你的模板“{name}”？",
  template_delete_confirm: "删除模板“{name}”？",
  "est.valid": "守护进程接受这些参数和数据。", "est.quota": "配额预估", "est.examples": "样本数",
  "est.steps_per_epoch": "每轮步数", "est.total_steps": "总步数", "est.checkpoints": "检查点数（配额）",
  "est.balance": "配额余额", "est.fits": "配额充足。", "est.does_not_fit": "配额不足以保存所有检查点：用完时任务将停止。",
  "est.memory": "显存建议", "est.params": "参数量：", "est.full": "全量微调",
  "est.none_yet": "点击“校验”查看预估和数据警告。",
  "monitor.pick": "在左侧选择一个任务。", "stream.connecting": "连接中…", "stream.live": "● 实时",
  "stream.retry": "重新连接中…", start: "开始", stop: "停止", resume: "继续训练", "resume.last": "最近的检查点",
  delete: "删除", delete_files: "同时删除文件", delete_confirm: "删除任务 {id} 及其记录？",
  delete_confirm_files: "删除任务 {id}、其记录以及它写入的文件？", download_logs: "下载日志", download_metrics: "指标 CSV",
  "eval.samples": "样本数", "eval.samples_hint": "每个检查点的评估样本", "eval.greedy": "0 = 贪心解码",
  "eval.run": "开始评估", "eval.base": "基础模型", "eval.best": "最优", "eval.verdict": "结论",
  "eval.need_two": "请至少选择两项：检查点，或一个检查点加基础模型。", "eval.starting": "启动中…", "eval.ranking": "排名",
  "eval.csv": "下载 CSV", "eval.report": "下载报告", "eval.examples_file": "下载逐样本回答（JSONL）",
  "eval.examples": "逐样本回答", "eval.all_candidates": "全部候选", "eval.no_examples": "没有样本。", prev: "上一页",
  next: "下一页", download: "下载", "col.example": "#", "col.prompt": "提示", "col.answer": "回答", "col.reference": "参考答案",
  "eval.history": "该任务的评估",
  "eval.none": "还没有评估。",
  "chat.target": "模型", "chat.pick_target": "请先选择任务和模型。", "chat.system": "系统提示词",
  "chat.system_hint": "例如：你是一个简洁的助手。", "chat.sampling": "推理参数", "chat.compare": "并排比较两个模型",
  "chat.message_hint": "消息（Enter 发送，Shift+Enter 换行）", "chat.send": "发送", "chat.clear": "清空",
  "chat.stopped": "已停止", "chat.ttft": "首字延迟",
  "sampling.temperature": "温度", "sampling.top_p": "Top-P", "sampling.top_k": "Top-K", "sampling.repetition_penalty": "重复惩罚",
  "sampling.max_new_tokens": "最大生成长度", "sampling.stop": "停止词",
  "pkg.quant": "量化类型", "pkg.lora": "LoRA 适配器", "pkg.merge": "合并到基础模型权重", "pkg.adapter": "单独导出适配器 GGUF",
  "pkg.output": "输出目录", "pkg.output_hint": "默认：<任务输出目录>/packages/<id>", "pkg.skip_verify": "跳过校验",
  "pkg.create": "开始打包", "pkg.need_quant": "请至少选择一种量化类型。", "pkg.files": "文件", "pkg.file": "文件",
  "pkg.kind": "类型", "pkg.verification": "校验（GGUF 与检查点对比）", "pkg.tokenizer": "分词器", "pkg.prompts": "提示数",
  "pkg.not_verified": "未校验。", "pkg.history": "该任务的打包", "pkg.none": "还没有打包。",
};

export type Lang = "zh" | "en";
const LANG_KEY = "modx.lang";
const TABLES: Record<Lang, Record<Key, string>> = { en, zh };

let current: Lang = (() => {
  const saved = typeof localStorage !== "undefined" ? localStorage.getItem(LANG_KEY) : null;
  if (saved === "zh" || saved === "en") return saved;
  return typeof navigator !== "undefined" && navigator.language.toLowerCase().startsWith("zh") ? "zh" : "en";
})();

export function lang(): Lang {
  return current;
}

export function setLang(next: Lang): void {
  current = next;
  localStorage.setItem(LANG_KEY, next);
}

/** The text of `key` in the current language (the key itself if a table lacks it). */
export function t(key: Key): string {
  return TABLES[current][key] ?? en[key] ?? key;
}
