import { BinaryReader, BinaryWriter } from "@bufbuild/protobuf/wire";
import { type CallOptions, type ChannelCredentials, Client, type ClientOptions, type ClientReadableStream, type ClientUnaryCall, type handleServerStreamingCall, type handleUnaryCall, type Metadata, type ServiceError, type UntypedServiceImplementation } from "@grpc/grpc-js";
import { Timestamp } from "../../google/protobuf/timestamp";
import { LogLine, PageRequest, ParamValue, TaskState, TaskType, Warning } from "./common";
export declare const protobufPackage = "modx.v1";
export declare const protobufFileName = "modx/v1/training.proto";
export declare enum EventKind {
    EVENT_KIND_UNSPECIFIED = 0,
    EVENT_KIND_STATE_CHANGE = 1,
    EVENT_KIND_METRICS = 2,
    EVENT_KIND_LOG = 3,
    EVENT_KIND_CHECKPOINT_SAVED = 4,
    EVENT_KIND_CHECKPOINT_DELETED = 5,
    EVENT_KIND_WARNING = 6,
    UNRECOGNIZED = -1
}
export declare function eventKindFromJSON(object: any): EventKind;
export declare function eventKindToJSON(object: EventKind): string;
export declare enum ParamType {
    PARAM_TYPE_UNSPECIFIED = 0,
    PARAM_TYPE_BOOL = 1,
    PARAM_TYPE_INT = 2,
    PARAM_TYPE_FLOAT = 3,
    PARAM_TYPE_STRING = 4,
    PARAM_TYPE_PATH = 5,
    PARAM_TYPE_CHOICE = 6,
    PARAM_TYPE_STRING_LIST = 7,
    UNRECOGNIZED = -1
}
export declare function paramTypeFromJSON(object: any): ParamType;
export declare function paramTypeToJSON(object: ParamType): string;
export interface Task {
    id: string;
    type: TaskType;
    state: TaskState;
    /**
     * Why the task is in its state: "user", "quota_exhausted", "daemon_restarted",
     * "worker_exited: ...", an error sentence, ...
     */
    stateReason: string;
    name: string;
    /**
     * The template the task was created from (informational: the task keeps its
     * own snapshot in `params`).
     */
    template: string;
    params: {
        [key: string]: ParamValue;
    };
    createTime: Timestamp | undefined;
    startTime: Timestamp | undefined;
    endTime: Timestamp | undefined;
    updateTime: Timestamp | undefined;
    /**
     * Optimizer steps done and planned (total_steps is the estimate until the run
     * starts, then the trainer's own count).
     */
    currentStep: string;
    totalSteps: string;
    /** 0 to 100: current_step / total_steps. */
    percent: number;
    /** The training loss of the last logged step; unset before the first. */
    lastLoss?: number | undefined;
    /** Checkpoints saved over the task's life (each cost one quota unit). */
    checkpointsSaved: number;
    quotaEstimate: QuotaEstimate | undefined;
    /** Device the task runs (or last ran) on, e.g. "cpu" or "cuda:0". */
    device: string;
    resumeCount: number;
    /**
     * Set by an evaluation that recommended a checkpoint of this task: a checkpoint
     * id, or "base" when the base model scored best (Chat and CreatePackage take
     * either as `checkpoint`).
     */
    bestCheckpointId: string;
    bestEvaluationId: string;
    /** 1 = next to run; 0 = not queued. */
    queuePosition: number;
    /** The last log lines when the task failed. */
    failureLogTail: string[];
    /** The failure's sentence (empty unless FAILED). */
    error: string;
    /**
     * What the training file holds, in tokens, as counted when the task was created
     * (unset for tasks created before modx kept data reports).
     */
    trainData: DataReport | undefined;
    /** The same for eval_file; unset without one. */
    evalData: DataReport | undefined;
    /**
     * Each parameter of the task with where its value came from (request, template,
     * default or an automatic rule) and, for an automatic one, why.
     */
    settings: ResolvedSetting[];
    /**
     * After an SFT run that completed: the trained model's loss next to the base
     * model's on held-out data. Unset before, and for pretraining.
     */
    learning: LearningCheck | undefined;
    /**
     * After a run: the estimate made before it (quota_estimate.run) next to what
     * the run measured, one entry per quantity that both have.
     */
    estimateChecks: EstimateCheck[];
}
export interface Task_ParamsEntry {
    key: string;
    value: ParamValue | undefined;
}
/** One parameter as the task resolved it. */
export interface ResolvedSetting {
    key: string;
    value: ParamValue | undefined;
    source: ResolvedSetting_Source;
    /** One sentence (set for SOURCE_AUTO), e.g. "66 examples: 6 epochs so each is seen often enough". */
    reason: string;
}
/** Where a value came from. */
export declare enum ResolvedSetting_Source {
    SOURCE_UNSPECIFIED = 0,
    /** SOURCE_DEFAULT - The schema's default for the task type (GetParamSchema), through the type's built-in template. */
    SOURCE_DEFAULT = 1,
    /** SOURCE_TEMPLATE - The named template the task was created from. */
    SOURCE_TEMPLATE = 2,
    /** SOURCE_EXPLICIT - The request's own params (modxctl --set): never replaced by a rule. */
    SOURCE_EXPLICIT = 3,
    /** SOURCE_AUTO - An automatic rule chose it from the data and the model; `reason` says why. */
    SOURCE_AUTO = 4,
    UNRECOGNIZED = -1
}
export declare function resolvedSetting_SourceFromJSON(object: any): ResolvedSetting_Source;
export declare function resolvedSetting_SourceToJSON(object: ResolvedSetting_Source): string;
/**
 * What a data file holds as the worker will see it: the conversations rendered
 * with the task's chat template and tokenized with its tokenizer, labelled as
 * training labels them (engine/data_report.py).
 */
export interface DataReport {
    /** The parameter that names the file: "train_file" or "eval_file". */
    field: string;
    path: string;
    /** The task's max_seq_length, in tokens, that truncation was counted at. */
    maxSeqLength: string;
    /** The format detected ("messages", "sharegpt", "alpaca", "text", ...; "mixed" when several). */
    format: string;
    /** Examples per detected format. */
    formatCounts: {
        [key: string]: string;
    };
    /** Examples (SFT: conversations; pretraining: documents) in the whole file, before max_samples. */
    examples: string;
    /** Tokens per example. */
    lengths: LengthDistribution | undefined;
    /** Tokens of every example before truncation. */
    totalTokens: string;
    /** Tokens the loss is computed on (SFT: assistant tokens; pretraining: every token), before truncation. */
    trainableTokens: string;
    /**
     * Tokens of the examples training keeps, after truncation at max_seq_length
     * (pretraining: the whole blocks).
     */
    keptTokens: string;
    keptTrainableTokens: string;
    /** Tokens cut by max_seq_length (pretraining: the tail that fills no block), and of them trainable ones. */
    truncatedTokensLost: string;
    truncatedTrainableTokensLost: string;
    /** Pretraining: blocks of max_seq_length tokens; 0 for SFT. */
    blocks: string;
    /**
     * One entry per kind of problem found (codes: template_error, nothing_to_learn, truncated, duplicate,
     * conflicting_answers, short_answer, role_order, in_training_data), with the worst lines.
     */
    findings: DataFinding[];
    /** The findings worth acting on, one sentence each with line numbers (also in the create response's warnings). */
    warnings: Warning[];
}
export interface DataReport_FormatCountsEntry {
    key: string;
    value: string;
}
/** Tokens per example: quantiles and a small histogram. */
export interface LengthDistribution {
    /** Examples counted (those the template could render). */
    count: string;
    totalTokens: string;
    minTokens: string;
    p50Tokens: string;
    p90Tokens: string;
    p99Tokens: string;
    maxTokens: string;
    meanTokens: number;
    /**
     * Eight bins, then one for examples longer than max_seq_length: eighths of max_seq_length, or,
     * when every example fits with room to spare, bins of a round width (1, 2, 5, 10, 20, ...) up to
     * the longest example.
     */
    histogram: HistogramBin[];
}
/** Examples with low_tokens <= length < high_tokens. */
export interface HistogramBin {
    lowTokens: string;
    /** 0: no upper bound (the examples longer than max_seq_length). */
    highTokens: string;
    count: string;
}
/** How many examples have one problem, and the worst few. */
export interface DataFinding {
    /**
     * template_error, nothing_to_learn, truncated, duplicate, conflicting_answers, short_answer,
     * role_order or in_training_data.
     */
    code: string;
    count: string;
    /** The worst examples first (by the finding's own measure: most tokens lost, longest prompt, ...). */
    lines: DataLine[];
}
/** One example to look at. */
export interface DataLine {
    /** 1-based line of the file (JSON array files: the element's position). */
    line: string;
    /** The number it is ranked by (tokens lost, prompt tokens, copies, ...). */
    value: string;
    /** What is wrong, in words. */
    detail: string;
}
/**
 * Steps, tokens, wall time and peak memory of a run before it starts
 * (engine/run_estimate.py). Time needs a calibration of this model on this device.
 */
export interface RunEstimate {
    /** Training examples the worker keeps (after max_samples, the eval split and dropped ones). */
    examples: string;
    /** Selected examples with no answer token within max_seq_length: training drops them. */
    droppedExamples: string;
    /** Examples evaluated (eval_file, or the eval split). */
    evalExamples: string;
    epochs: string;
    stepsPerEpoch: string;
    totalSteps: string;
    /** Forward/backward passes of per_device_train_batch_size examples over the whole run. */
    microBatches: string;
    /** Tokens trained on per epoch, all and labelled. */
    tokensPerEpoch: string;
    trainableTokensPerEpoch: string;
    /** tokens_per_epoch x epochs. */
    totalTokens: string;
    /** Seconds, on this host's device, from the calibration; unset when not calibrated. */
    trainingSeconds?: number | undefined;
    evalSeconds?: number | undefined;
    /** Worker start: imports, model load, data preparation. */
    startupSeconds?: number | undefined;
    totalSeconds?: number | undefined;
    /** Peak memory of the training process: RSS on the CPU, allocated memory on a GPU (memory_kind). */
    peakMemoryBytes: string;
    memoryKind: RunEstimate_MemoryKind;
    /** Time and memory come from a calibration (timed optimizer steps of this model on this device). */
    calibrated: boolean;
    /** The calibration came from the cache (not run for this request). */
    calibrationCached: boolean;
    /** When the calibration was measured. */
    calibrationTime: Timestamp | undefined;
    /** Memory of the device the peak is compared with: the host's RAM or the GPU's memory. */
    memoryCapacityBytes: string;
    /** Free now (MemAvailable on the host, free GPU memory); 0 when unknown. */
    memoryAvailableBytes: string;
    /**
     * peak_memory_bytes <= memory_capacity_bytes. When it does not, a calibrated estimate is refused at
     * create (FAILED_PRECONDITION); a modelled one (calibrated false) gives a memory_insufficient warning
     * with what would fit. A run whose weights and optimizer state alone exceed the device is always refused.
     */
    memoryFits: boolean;
    /** It fits but leaves little: above 90% of the capacity or above what is free now. */
    memoryTight: boolean;
    /** How the numbers were reached, one sentence per line. */
    explanation: string[];
}
/** Where peak_memory_bytes lives. */
export declare enum RunEstimate_MemoryKind {
    MEMORY_KIND_UNSPECIFIED = 0,
    /** MEMORY_KIND_HOST_RSS - Resident memory of the worker process (a CPU run). */
    MEMORY_KIND_HOST_RSS = 1,
    /** MEMORY_KIND_DEVICE - GPU memory allocated by tensors. */
    MEMORY_KIND_DEVICE = 2,
    UNRECOGNIZED = -1
}
export declare function runEstimate_MemoryKindFromJSON(object: any): RunEstimate_MemoryKind;
export declare function runEstimate_MemoryKindToJSON(object: RunEstimate_MemoryKind): string;
/** One estimated quantity next to what the run measured. */
export interface EstimateCheck {
    /** "training_seconds" (first step to last) or "peak_memory_bytes" (RunEstimate.memory_kind). */
    quantity: string;
    estimated: number;
    actual: number;
    /** (estimated - actual) / actual. */
    relativeError: number;
    /** The target for |relative_error| (0.30 for time, 0.25 for memory). */
    target: number;
    withinTarget: boolean;
    sentence: string;
}
/**
 * Did the run learn? The trained model's mean loss against the base model's,
 * on the same held-out examples, measured by the worker at the end of the run.
 */
export interface LearningCheck {
    /**
     * Which examples: "eval_file", "eval_split" (held out by eval_split_ratio) or
     * "train_slice" (a few training examples, when there is no evaluation data).
     */
    data: string;
    examples: string;
    /**
     * The mean eval loss of those examples as training computes it (per labelled
     * token within a batch, averaged over batches), nats: before training ...
     */
    baseLoss: number;
    /** ... and after it. */
    finalLoss: number;
    /** (base_loss - final_loss) / base_loss. */
    relativeImprovement: number;
    verdict: LearningCheck_Verdict;
    /** The verdict in a plain sentence. */
    sentence: string;
    /** What to change when it did not learn (or got worse), one suggestion each. */
    advice: string[];
}
export declare enum LearningCheck_Verdict {
    VERDICT_UNSPECIFIED = 0,
    /** VERDICT_LEARNED - The loss fell clearly. */
    VERDICT_LEARNED = 1,
    /** VERDICT_LEARNED_LITTLE - It fell, but little. */
    VERDICT_LEARNED_LITTLE = 2,
    /** VERDICT_DID_NOT_LEARN - It did not move. */
    VERDICT_DID_NOT_LEARN = 3,
    /** VERDICT_GOT_WORSE - It rose: worse than the base model on these examples. */
    VERDICT_GOT_WORSE = 4,
    UNRECOGNIZED = -1
}
export declare function learningCheck_VerdictFromJSON(object: any): LearningCheck_Verdict;
export declare function learningCheck_VerdictToJSON(object: LearningCheck_Verdict): string;
export interface QuotaEstimate {
    /**
     * Training examples after max_samples and the eval split (pretraining: blocks
     * of max_seq_length tokens).
     */
    numExamples: string;
    stepsPerEpoch: string;
    totalSteps: string;
    /** Checkpoints the parameters will save, each costing one quota unit. */
    checkpoints: string;
    /** The quota balance when the estimate was made. */
    balance: string;
    /** checkpoints <= balance (else a quota_insufficient warning comes with it). */
    fits: boolean;
    /** How the number was reached, in one sentence. */
    explanation: string;
    /** GPU memory the run is expected to need on its device; unset for a task that trains on the CPU. */
    memory: MemoryEstimate | undefined;
    /** Steps, tokens, time and peak memory on this host (RSS on the CPU, GPU memory on a GPU). */
    run: RunEstimate | undefined;
}
/**
 * Device memory of a training run, estimated before it starts (engine/memory.py).
 * The GPU memory of a task by part (engine/memory.py's model at max_seq_length), set when the host has GPUs.
 */
export interface MemoryEstimate {
    /** The device it was checked against, e.g. "cuda:0 (NVIDIA H100 80GB HBM3)": the smallest the task may get. */
    device: string;
    /** Its memory (times the processes with FSDP, which shards weights and optimizer state). */
    capacityBytes: string;
    estimateBytes: string;
    /**
     * The task's one memory verdict: RunEstimate.memory_fits when the task has a run estimate, else
     * estimate_bytes <= capacity_bytes.
     */
    fits: boolean;
    /** Bytes per part: weights, trainable_state, activations, logits, overhead_context, overhead_slack. */
    parts: {
        [key: string]: string;
    };
    /** What would fit when it does not (smaller batch, gradient checkpointing, QLoRA, ...). */
    advice: string[];
    explanation: string;
}
export interface MemoryEstimate_PartsEntry {
    key: string;
    value: string;
}
export interface Checkpoint {
    id: string;
    taskId: string;
    step: string;
    /** Fractional epoch at the save (1.5 = half way through the second). */
    epoch: number;
    /** The training loss logged last before the save. */
    loss?: number | undefined;
    /** The checkpoint directory on the daemon's host. */
    path: string;
    /** Bytes of the files in the directory. */
    sizeBytes: string;
    createTime: Timestamp | undefined;
    /** Retention (save_total_limit) deleted the files; the record stays. */
    deleted: boolean;
    deleteTime: Timestamp | undefined;
}
/**
 * One logged step (every logging_steps) or evaluation. Unset optional fields were
 * not measured at that step (an eval point has no training loss).
 */
export interface MetricsPoint {
    step: string;
    totalSteps: string;
    epoch: number;
    /** 0 to 100. */
    percent: number;
    /** Seconds until the run ends, from the recent step rate. */
    etaSeconds?: number | undefined;
    /** Mean training loss since the previous point. */
    loss?: number | undefined;
    /** exp(loss). */
    perplexity?: number | undefined;
    learningRate?: number | undefined;
    /** Gradient norm before clipping (max_grad_norm). */
    gradNorm?: number | undefined;
    /** Input tokens the trainer saw per second of wall time since the previous point. */
    tokensPerSecond?: number | undefined;
    evalLoss?: number | undefined;
    evalPerplexity?: number | undefined;
    /** When the worker logged it (UTC). */
    time: Timestamp | undefined;
    /**
     * Device telemetry of the training process when the point was logged (rank 0 under DDP/FSDP).
     * GPU memory from torch's caching allocator: allocated by tensors, reserved from the driver,
     * and the peak allocated since training began.
     */
    deviceMemoryAllocatedBytes?: string | undefined;
    deviceMemoryReservedBytes?: string | undefined;
    deviceMemoryPeakBytes?: string | undefined;
    /** From NVML (nvidia-ml-py) when available: the GPU's utilization, power draw and temperature. */
    gpuUtilizationPercent?: number | undefined;
    gpuPowerWatts?: number | undefined;
    gpuTemperatureCelsius?: number | undefined;
    /** Resident memory of the training process (CPU and GPU runs). */
    hostMemoryRssBytes?: string | undefined;
    /**
     * Preference tasks (dpo, orpo) only, as TRL logs them (docs/preference.md); perplexity stays
     * unset there (exp of a preference loss means nothing). DPO's rewards are beta x (policy -
     * reference) log-probability of an answer; ORPO's are lambda x its mean log-probability per token.
     */
    rewardChosen?: number | undefined;
    rewardRejected?: number | undefined;
    /** reward_chosen - reward_rejected, averaged over the pairs. */
    rewardMargin?: number | undefined;
    /** Share of pairs whose chosen answer has the higher reward (0 to 1). */
    rewardAccuracy?: number | undefined;
    /** Summed log-probabilities of the answers under the policy (ORPO: mean per token). */
    logpsChosen?: number | undefined;
    logpsRejected?: number | undefined;
    /** ORPO: the SFT loss on the chosen answers, the log odds ratio and the mean log odds of chosen. */
    nllLoss?: number | undefined;
    logOddsRatio?: number | undefined;
    logOddsChosen?: number | undefined;
    /** The same on the evaluation data (eval_strategy). */
    evalRewardChosen?: number | undefined;
    evalRewardRejected?: number | undefined;
    evalRewardMargin?: number | undefined;
    evalRewardAccuracy?: number | undefined;
    evalLogpsChosen?: number | undefined;
    evalLogpsRejected?: number | undefined;
    evalNllLoss?: number | undefined;
    evalLogOddsRatio?: number | undefined;
    evalLogOddsChosen?: number | undefined;
}
export interface StateChange {
    fromState: TaskState;
    toState: TaskState;
    reason: string;
}
export interface CheckpointDeleted {
    checkpointId: string;
    step: string;
    path: string;
}
/** One entry of a task's history. `seq` increases by one per task, without gaps. */
export interface TaskEvent {
    taskId: string;
    seq: string;
    time: Timestamp | undefined;
    payload: {
        $case: "stateChange";
        stateChange: StateChange;
    } | {
        $case: "metrics";
        metrics: MetricsPoint;
    } | {
        $case: "log";
        log: LogLine;
    } | {
        $case: "checkpointSaved";
        checkpointSaved: Checkpoint;
    } | {
        $case: "checkpointDeleted";
        checkpointDeleted: CheckpointDeleted;
    } | {
        $case: "warning";
        warning: Warning;
    } | undefined;
}
export interface CreateTaskRequest {
    type: TaskType;
    /** Template to start from; empty = the built-in default of `type`. */
    template: string;
    /** Overrides on top of the template (values may be strings). */
    params: {
        [key: string]: ParamValue;
    };
    name: string;
    /**
     * Validate and estimate only; store nothing. The response's task then has an
     * empty `id` (no task exists) and shows what would be stored: the resolved
     * params, state CREATED and the quota estimate.
     */
    validateOnly: boolean;
}
export interface CreateTaskRequest_ParamsEntry {
    key: string;
    value: ParamValue | undefined;
}
export interface CreateTaskResponse {
    task: Task | undefined;
    warnings: Warning[];
}
export interface GetTaskRequest {
    taskId: string;
}
export interface GetTaskResponse {
    task: Task | undefined;
}
export interface ListTasksRequest {
    /** Only these states (empty = all); newest first. */
    states: TaskState[];
    /** Only this type (UNSPECIFIED = all). */
    type: TaskType;
    page: PageRequest | undefined;
}
export interface ListTasksResponse {
    tasks: Task[];
    nextPageToken: string;
    /** Tasks matching the filter, over all pages. */
    totalSize: number;
}
export interface DeleteTaskRequest {
    taskId: string;
    /** Also delete the task's output dir (checkpoints, logs) from disk. */
    deleteFiles: boolean;
}
export interface DeleteTaskResponse {
}
export interface StartTaskRequest {
    taskId: string;
}
export interface StartTaskResponse {
    task: Task | undefined;
    warnings: Warning[];
}
export interface StopTaskRequest {
    taskId: string;
}
export interface StopTaskResponse {
    task: Task | undefined;
}
export interface ResumeTaskRequest {
    taskId: string;
    /**
     * Checkpoint id, step number or path; empty = the last saved checkpoint
     * ("base" is refused: a resume continues a run).
     */
    checkpoint: string;
}
export interface ResumeTaskResponse {
    task: Task | undefined;
    /** The checkpoint it resumes from (unset: it starts over, none was saved). */
    checkpoint: Checkpoint | undefined;
    warnings: Warning[];
}
export interface WatchTaskRequest {
    taskId: string;
    /** Replay events with seq > after_seq (0 = from the beginning). */
    afterSeq: string;
    /** Only these kinds (empty = all). */
    kinds: EventKind[];
    /** Replay history and return without following live events. */
    historyOnly: boolean;
    /** Keep following after the task reaches a terminal state (it may be resumed). */
    followForever: boolean;
}
export interface WatchTaskResponse {
    event: TaskEvent | undefined;
}
export interface ListMetricsRequest {
    taskId: string;
    /** Only points with step > after_step (0 = all), in step order. */
    afterStep: string;
    page: PageRequest | undefined;
}
export interface ListMetricsResponse {
    points: MetricsPoint[];
    nextPageToken: string;
}
export interface ListCheckpointsRequest {
    taskId: string;
    /** Also the records whose files save_total_limit deleted. Step order. */
    includeDeleted: boolean;
}
export interface ListCheckpointsResponse {
    checkpoints: Checkpoint[];
}
export interface EstimateQuotaRequest {
    /** Either an existing task ... */
    taskId: string;
    /** ... or a parameter set as for CreateTask. */
    type: TaskType;
    template: string;
    params: {
        [key: string]: ParamValue;
    };
    /**
     * Time a few optimizer steps of the model on its device when no calibration of
     * this step shape is cached (seconds to a few minutes, in a separate process);
     * without it a run that was never calibrated gets no time estimate.
     */
    calibrate: boolean;
}
export interface EstimateQuotaRequest_ParamsEntry {
    key: string;
    value: ParamValue | undefined;
}
export interface EstimateQuotaResponse {
    /** With `run` set: steps, tokens, time and memory. */
    estimate: QuotaEstimate | undefined;
    warnings: Warning[];
    /** The data reports the estimate was made from. */
    trainData: DataReport | undefined;
    evalData: DataReport | undefined;
    /** The parameters as they would be resolved (a parameter set) or were (a task). */
    settings: ResolvedSetting[];
}
export interface TypeDefault {
    type: TaskType;
    value: ParamValue | undefined;
}
export interface ParamSpec {
    key: string;
    /** data, training, lora, optimization, logging, general */
    category: string;
    /** The form labels (Chinese as in the seed, English) and a help sentence (English). */
    labelZh: string;
    labelEn: string;
    help: string;
    type: ParamType;
    defaultValue: ParamValue | undefined;
    /** Defaults that differ by training type (use_lora: true for SFT, false for pretraining). */
    typeDefaults: TypeDefault[];
    /** Inclusive bounds of a number (unset = unbounded on that side). */
    min?: number | undefined;
    max?: number | undefined;
    /** The allowed values of a CHOICE parameter. */
    choices: string[];
    /** Display fold group: "" (core, expanded), optional, advanced, optimization, save, eval. */
    foldGroup: string;
    appliesTo: TaskType[];
    /** Must be given (by the template or the request) to create a task. */
    required: boolean;
    /** What the number counts, for display ("tokens", "min"; empty = none). */
    unit: string;
}
export interface GetParamSchemaRequest {
    /** Only parameters that apply to this type (UNSPECIFIED = all). */
    type: TaskType;
}
export interface GetParamSchemaResponse {
    /** In display order. */
    params: ParamSpec[];
    /** The fold groups in display order ("" first: the core, expanded). */
    foldGroups: string[];
}
export interface Template {
    name: string;
    type: TaskType;
    description: string;
    /** Built-in templates cannot be overwritten or deleted. */
    builtin: boolean;
    params: {
        [key: string]: ParamValue;
    };
    createTime: Timestamp | undefined;
    updateTime: Timestamp | undefined;
}
export interface Template_ParamsEntry {
    key: string;
    value: ParamValue | undefined;
}
export interface ListTemplatesRequest {
    type: TaskType;
}
export interface ListTemplatesResponse {
    templates: Template[];
}
export interface GetTemplateRequest {
    name: string;
}
export interface GetTemplateResponse {
    template: Template | undefined;
}
export interface SaveTemplateRequest {
    name: string;
    type: TaskType;
    /** Start from this task's parameters instead of the type's default template. */
    fromTaskId: string;
    params: {
        [key: string]: ParamValue;
    };
    description: string;
    /** Replace an existing user template of the same name. */
    overwrite: boolean;
}
export interface SaveTemplateRequest_ParamsEntry {
    key: string;
    value: ParamValue | undefined;
}
export interface SaveTemplateResponse {
    template: Template | undefined;
}
export interface DeleteTemplateRequest {
    name: string;
}
export interface DeleteTemplateResponse {
}
export declare const Task: MessageFns<Task>;
export declare const Task_ParamsEntry: MessageFns<Task_ParamsEntry>;
export declare const ResolvedSetting: MessageFns<ResolvedSetting>;
export declare const DataReport: MessageFns<DataReport>;
export declare const DataReport_FormatCountsEntry: MessageFns<DataReport_FormatCountsEntry>;
export declare const LengthDistribution: MessageFns<LengthDistribution>;
export declare const HistogramBin: MessageFns<HistogramBin>;
export declare const DataFinding: MessageFns<DataFinding>;
export declare const DataLine: MessageFns<DataLine>;
export declare const RunEstimate: MessageFns<RunEstimate>;
export declare const EstimateCheck: MessageFns<EstimateCheck>;
export declare const LearningCheck: MessageFns<LearningCheck>;
export declare const QuotaEstimate: MessageFns<QuotaEstimate>;
export declare const MemoryEstimate: MessageFns<MemoryEstimate>;
export declare const MemoryEstimate_PartsEntry: MessageFns<MemoryEstimate_PartsEntry>;
export declare const Checkpoint: MessageFns<Checkpoint>;
export declare const MetricsPoint: MessageFns<MetricsPoint>;
export declare const StateChange: MessageFns<StateChange>;
export declare const CheckpointDeleted: MessageFns<CheckpointDeleted>;
export declare const TaskEvent: MessageFns<TaskEvent>;
export declare const CreateTaskRequest: MessageFns<CreateTaskRequest>;
export declare const CreateTaskRequest_ParamsEntry: MessageFns<CreateTaskRequest_ParamsEntry>;
export declare const CreateTaskResponse: MessageFns<CreateTaskResponse>;
export declare const GetTaskRequest: MessageFns<GetTaskRequest>;
export declare const GetTaskResponse: MessageFns<GetTaskResponse>;
export declare const ListTasksRequest: MessageFns<ListTasksRequest>;
export declare const ListTasksResponse: MessageFns<ListTasksResponse>;
export declare const DeleteTaskRequest: MessageFns<DeleteTaskRequest>;
export declare const DeleteTaskResponse: MessageFns<DeleteTaskResponse>;
export declare const StartTaskRequest: MessageFns<StartTaskRequest>;
export declare const StartTaskResponse: MessageFns<StartTaskResponse>;
export declare const StopTaskRequest: MessageFns<StopTaskRequest>;
export declare const StopTaskResponse: MessageFns<StopTaskResponse>;
export declare const ResumeTaskRequest: MessageFns<ResumeTaskRequest>;
export declare const ResumeTaskResponse: MessageFns<ResumeTaskResponse>;
export declare const WatchTaskRequest: MessageFns<WatchTaskRequest>;
export declare const WatchTaskResponse: MessageFns<WatchTaskResponse>;
export declare const ListMetricsRequest: MessageFns<ListMetricsRequest>;
export declare const ListMetricsResponse: MessageFns<ListMetricsResponse>;
export declare const ListCheckpointsRequest: MessageFns<ListCheckpointsRequest>;
export declare const ListCheckpointsResponse: MessageFns<ListCheckpointsResponse>;
export declare const EstimateQuotaRequest: MessageFns<EstimateQuotaRequest>;
export declare const EstimateQuotaRequest_ParamsEntry: MessageFns<EstimateQuotaRequest_ParamsEntry>;
export declare const EstimateQuotaResponse: MessageFns<EstimateQuotaResponse>;
export declare const TypeDefault: MessageFns<TypeDefault>;
export declare const ParamSpec: MessageFns<ParamSpec>;
export declare const GetParamSchemaRequest: MessageFns<GetParamSchemaRequest>;
export declare const GetParamSchemaResponse: MessageFns<GetParamSchemaResponse>;
export declare const Template: MessageFns<Template>;
export declare const Template_ParamsEntry: MessageFns<Template_ParamsEntry>;
export declare const ListTemplatesRequest: MessageFns<ListTemplatesRequest>;
export declare const ListTemplatesResponse: MessageFns<ListTemplatesResponse>;
export declare const GetTemplateRequest: MessageFns<GetTemplateRequest>;
export declare const GetTemplateResponse: MessageFns<GetTemplateResponse>;
export declare const SaveTemplateRequest: MessageFns<SaveTemplateRequest>;
export declare const SaveTemplateRequest_ParamsEntry: MessageFns<SaveTemplateRequest_ParamsEntry>;
export declare const SaveTemplateResponse: MessageFns<SaveTemplateResponse>;
export declare const DeleteTemplateRequest: MessageFns<DeleteTemplateRequest>;
export declare const DeleteTemplateResponse: MessageFns<DeleteTemplateResponse>;
/**
 * TrainingService owns training tasks: their parameters, lifecycle, live events,
 * metrics history, checkpoints and the templates they are created from.
 */
export type TrainingServiceService = typeof TrainingServiceService;
export declare const TrainingServiceService: {
    /**
     * Validate parameters and data, store a task in CREATED with its own
     * parameter snapshot. Nothing is created when validation fails. With
     * validate_only nothing is stored either and the returned task has no id.
     */
    readonly createTask: {
        readonly path: "/modx.v1.TrainingService/CreateTask";
        readonly requestStream: false;
        readonly responseStream: false;
        readonly requestSerialize: (value: CreateTaskRequest) => Buffer;
        readonly requestDeserialize: (value: Buffer) => CreateTaskRequest;
        readonly responseSerialize: (value: CreateTaskResponse) => Buffer;
        readonly responseDeserialize: (value: Buffer) => CreateTaskResponse;
    };
    readonly getTask: {
        readonly path: "/modx.v1.TrainingService/GetTask";
        readonly requestStream: false;
        readonly responseStream: false;
        readonly requestSerialize: (value: GetTaskRequest) => Buffer;
        readonly requestDeserialize: (value: Buffer) => GetTaskRequest;
        readonly responseSerialize: (value: GetTaskResponse) => Buffer;
        readonly responseDeserialize: (value: Buffer) => GetTaskResponse;
    };
    readonly listTasks: {
        readonly path: "/modx.v1.TrainingService/ListTasks";
        readonly requestStream: false;
        readonly responseStream: false;
        readonly requestSerialize: (value: ListTasksRequest) => Buffer;
        readonly requestDeserialize: (value: Buffer) => ListTasksRequest;
        readonly responseSerialize: (value: ListTasksResponse) => Buffer;
        readonly responseDeserialize: (value: Buffer) => ListTasksResponse;
    };
    /** Delete a task that is not active, with its records (files stay unless asked). */
    readonly deleteTask: {
        readonly path: "/modx.v1.TrainingService/DeleteTask";
        readonly requestStream: false;
        readonly responseStream: false;
        readonly requestSerialize: (value: DeleteTaskRequest) => Buffer;
        readonly requestDeserialize: (value: Buffer) => DeleteTaskRequest;
        readonly responseSerialize: (value: DeleteTaskResponse) => Buffer;
        readonly responseDeserialize: (value: Buffer) => DeleteTaskResponse;
    };
    /** Queue a CREATED task: it becomes PENDING and runs when a device is free. */
    readonly startTask: {
        readonly path: "/modx.v1.TrainingService/StartTask";
        readonly requestStream: false;
        readonly responseStream: false;
        readonly requestSerialize: (value: StartTaskRequest) => Buffer;
        readonly requestDeserialize: (value: Buffer) => StartTaskRequest;
        readonly responseSerialize: (value: StartTaskResponse) => Buffer;
        readonly responseDeserialize: (value: Buffer) => StartTaskResponse;
    };
    /**
     * Ask a RUNNING task to stop: STOPPING, then a final checkpoint, then STOPPED.
     * A PENDING task is taken off the queue and becomes STOPPED at once.
     */
    readonly stopTask: {
        readonly path: "/modx.v1.TrainingService/StopTask";
        readonly requestStream: false;
        readonly responseStream: false;
        readonly requestSerialize: (value: StopTaskRequest) => Buffer;
        readonly requestDeserialize: (value: Buffer) => StopTaskRequest;
        readonly responseSerialize: (value: StopTaskResponse) => Buffer;
        readonly responseDeserialize: (value: Buffer) => StopTaskResponse;
    };
    /** Queue a STOPPED or FAILED task again from its last (or a named) checkpoint. */
    readonly resumeTask: {
        readonly path: "/modx.v1.TrainingService/ResumeTask";
        readonly requestStream: false;
        readonly responseStream: false;
        readonly requestSerialize: (value: ResumeTaskRequest) => Buffer;
        readonly requestDeserialize: (value: Buffer) => ResumeTaskRequest;
        readonly responseSerialize: (value: ResumeTaskResponse) => Buffer;
        readonly responseDeserialize: (value: Buffer) => ResumeTaskResponse;
    };
    /**
     * Replay the task's events after `after_seq` from the store, then follow
     * live ones until the task is terminal (or forever with `follow_forever`).
     */
    readonly watchTask: {
        readonly path: "/modx.v1.TrainingService/WatchTask";
        readonly requestStream: false;
        readonly responseStream: true;
        readonly requestSerialize: (value: WatchTaskRequest) => Buffer;
        readonly requestDeserialize: (value: Buffer) => WatchTaskRequest;
        readonly responseSerialize: (value: WatchTaskResponse) => Buffer;
        readonly responseDeserialize: (value: Buffer) => WatchTaskResponse;
    };
    readonly listMetrics: {
        readonly path: "/modx.v1.TrainingService/ListMetrics";
        readonly requestStream: false;
        readonly responseStream: false;
        readonly requestSerialize: (value: ListMetricsRequest) => Buffer;
        readonly requestDeserialize: (value: Buffer) => ListMetricsRequest;
        readonly responseSerialize: (value: ListMetricsResponse) => Buffer;
        readonly responseDeserialize: (value: Buffer) => ListMetricsResponse;
    };
    readonly listCheckpoints: {
        readonly path: "/modx.v1.TrainingService/ListCheckpoints";
        readonly requestStream: false;
        readonly responseStream: false;
        readonly requestSerialize: (value: ListCheckpointsRequest) => Buffer;
        readonly requestDeserialize: (value: Buffer) => ListCheckpointsRequest;
        readonly responseSerialize: (value: ListCheckpointsResponse) => Buffer;
        readonly responseDeserialize: (value: Buffer) => ListCheckpointsResponse;
    };
    /**
     * How many checkpoints (= quota units) a task or a parameter set will use, and
     * its steps, tokens, wall time and peak memory on this host, with the data reports.
     */
    readonly estimateQuota: {
        readonly path: "/modx.v1.TrainingService/EstimateQuota";
        readonly requestStream: false;
        readonly responseStream: false;
        readonly requestSerialize: (value: EstimateQuotaRequest) => Buffer;
        readonly requestDeserialize: (value: Buffer) => EstimateQuotaRequest;
        readonly responseSerialize: (value: EstimateQuotaResponse) => Buffer;
        readonly responseDeserialize: (value: Buffer) => EstimateQuotaResponse;
    };
    /**
     * The schema of every parameter, so a front end renders the form without
     * hard-coding it.
     */
    readonly getParamSchema: {
        readonly path: "/modx.v1.TrainingService/GetParamSchema";
        readonly requestStream: false;
        readonly responseStream: false;
        readonly requestSerialize: (value: GetParamSchemaRequest) => Buffer;
        readonly requestDeserialize: (value: Buffer) => GetParamSchemaRequest;
        readonly responseSerialize: (value: GetParamSchemaResponse) => Buffer;
        readonly responseDeserialize: (value: Buffer) => GetParamSchemaResponse;
    };
    readonly listTemplates: {
        readonly path: "/modx.v1.TrainingService/ListTemplates";
        readonly requestStream: false;
        readonly responseStream: false;
        readonly requestSerialize: (value: ListTemplatesRequest) => Buffer;
        readonly requestDeserialize: (value: Buffer) => ListTemplatesRequest;
        readonly responseSerialize: (value: ListTemplatesResponse) => Buffer;
        readonly responseDeserialize: (value: Buffer) => ListTemplatesResponse;
    };
    readonly getTemplate: {
        readonly path: "/modx.v1.TrainingService/GetTemplate";
        readonly requestStream: false;
        readonly responseStream: false;
        readonly requestSerialize: (value: GetTemplateRequest) => Buffer;
        readonly requestDeserialize: (value: Buffer) => GetTemplateRequest;
        readonly responseSerialize: (value: GetTemplateResponse) => Buffer;
        readonly responseDeserialize: (value: Buffer) => GetTemplateResponse;
    };
    readonly saveTemplate: {
        readonly path: "/modx.v1.TrainingService/SaveTemplate";
        readonly requestStream: false;
        readonly responseStream: false;
        readonly requestSerialize: (value: SaveTemplateRequest) => Buffer;
        readonly requestDeserialize: (value: Buffer) => SaveTemplateRequest;
        readonly responseSerialize: (value: SaveTemplateResponse) => Buffer;
        readonly responseDeserialize: (value: Buffer) => SaveTemplateResponse;
    };
    readonly deleteTemplate: {
        readonly path: "/modx.v1.TrainingService/DeleteTemplate";
        readonly requestStream: false;
        readonly responseStream: false;
        readonly requestSerialize: (value: DeleteTemplateRequest) => Buffer;
        readonly requestDeserialize: (value: Buffer) => DeleteTemplateRequest;
        readonly responseSerialize: (value: DeleteTemplateResponse) => Buffer;
        readonly responseDeserialize: (value: Buffer) => DeleteTemplateResponse;
    };
};
export interface TrainingServiceServer extends UntypedServiceImplementation {
    /**
     * Validate parameters and data, store a task in CREATED with its own
     * parameter snapshot. Nothing is created when validation fails. With
     * validate_only nothing is stored either and the returned task has no id.
     */
    createTask: handleUnaryCall<CreateTaskRequest, CreateTaskResponse>;
    getTask: handleUnaryCall<GetTaskRequest, GetTaskResponse>;
    listTasks: handleUnaryCall<ListTasksRequest, ListTasksResponse>;
    /** Delete a task that is not active, with its records (files stay unless asked). */
    deleteTask: handleUnaryCall<DeleteTaskRequest, DeleteTaskResponse>;
    /** Queue a CREATED task: it becomes PENDING and runs when a device is free. */
    startTask: handleUnaryCall<StartTaskRequest, StartTaskResponse>;
    /**
     * Ask a RUNNING task to stop: STOPPING, then a final checkpoint, then STOPPED.
     * A PENDING task is taken off the queue and becomes STOPPED at once.
     */
    stopTask: handleUnaryCall<StopTaskRequest, StopTaskResponse>;
    /** Queue a STOPPED or FAILED task again from its last (or a named) checkpoint. */
    resumeTask: handleUnaryCall<ResumeTaskRequest, ResumeTaskResponse>;
    /**
     * Replay the task's events after `after_seq` from the store, then follow
     * live ones until the task is terminal (or forever with `follow_forever`).
     */
    watchTask: handleServerStreamingCall<WatchTaskRequest, WatchTaskResponse>;
    listMetrics: handleUnaryCall<ListMetricsRequest, ListMetricsResponse>;
    listCheckpoints: handleUnaryCall<ListCheckpointsRequest, ListCheckpointsResponse>;
    /**
     * How many checkpoints (= quota units) a task or a parameter set will use, and
     * its steps, tokens, wall time and peak memory on this host, with the data reports.
     */
    estimateQuota: handleUnaryCall<EstimateQuotaRequest, EstimateQuotaResponse>;
    /**
     * The schema of every parameter, so a front end renders the form without
     * hard-coding it.
     */
    getParamSchema: handleUnaryCall<GetParamSchemaRequest, GetParamSchemaResponse>;
    listTemplates: handleUnaryCall<ListTemplatesRequest, ListTemplatesResponse>;
    getTemplate: handleUnaryCall<GetTemplateRequest, GetTemplateResponse>;
    saveTemplate: handleUnaryCall<SaveTemplateRequest, SaveTemplateResponse>;
    deleteTemplate: handleUnaryCall<DeleteTemplateRequest, DeleteTemplateResponse>;
}
export interface TrainingServiceClient extends Client {
    /**
     * Validate parameters and data, store a task in CREATED with its own
     * parameter snapshot. Nothing is created when validation fails. With
     * validate_only nothing is stored either and the returned task has no id.
     */
    createTask(request: CreateTaskRequest, callback: (error: ServiceError | null, response: CreateTaskResponse) => void): ClientUnaryCall;
    createTask(request: CreateTaskRequest, metadata: Metadata, callback: (error: ServiceError | null, response: CreateTaskResponse) => void): ClientUnaryCall;
    createTask(request: CreateTaskRequest, metadata: Metadata, options: Partial<CallOptions>, callback: (error: ServiceError | null, response: CreateTaskResponse) => void): ClientUnaryCall;
    getTask(request: GetTaskRequest, callback: (error: ServiceError | null, response: GetTaskResponse) => void): ClientUnaryCall;
    getTask(request: GetTaskRequest, metadata: Metadata, callback: (error: ServiceError | null, response: GetTaskResponse) => void): ClientUnaryCall;
    getTask(request: GetTaskRequest, metadata: Metadata, options: Partial<CallOptions>, callback: (error: ServiceError | null, response: GetTaskResponse) => void): ClientUnaryCall;
    listTasks(request: ListTasksRequest, callback: (error: ServiceError | null, response: ListTasksResponse) => void): ClientUnaryCall;
    listTasks(request: ListTasksRequest, metadata: Metadata, callback: (error: ServiceError | null, response: ListTasksResponse) => void): ClientUnaryCall;
    listTasks(request: ListTasksRequest, metadata: Metadata, options: Partial<CallOptions>, callback: (error: ServiceError | null, response: ListTasksResponse) => void): ClientUnaryCall;
    /** Delete a task that is not active, with its records (files stay unless asked). */
    deleteTask(request: DeleteTaskRequest, callback: (error: ServiceError | null, response: DeleteTaskResponse) => void): ClientUnaryCall;
    deleteTask(request: DeleteTaskRequest, metadata: Metadata, callback: (error: ServiceError | null, response: DeleteTaskResponse) => void): ClientUnaryCall;
    deleteTask(request: DeleteTaskRequest, metadata: Metadata, options: Partial<CallOptions>, callback: (error: ServiceError | null, response: DeleteTaskResponse) => void): ClientUnaryCall;
    /** Queue a CREATED task: it becomes PENDING and runs when a device is free. */
    startTask(request: StartTaskRequest, callback: (error: ServiceError | null, response: StartTaskResponse) => void): ClientUnaryCall;
    startTask(request: StartTaskRequest, metadata: Metadata, callback: (error: ServiceError | null, response: StartTaskResponse) => void): ClientUnaryCall;
    startTask(request: StartTaskRequest, metadata: Metadata, options: Partial<CallOptions>, callback: (error: ServiceError | null, response: StartTaskResponse) => void): ClientUnaryCall;
    /**
     * Ask a RUNNING task to stop: STOPPING, then a final checkpoint, then STOPPED.
     * A PENDING task is taken off the queue and becomes STOPPED at once.
     */
    stopTask(request: StopTaskRequest, callback: (error: ServiceError | null, response: StopTaskResponse) => void): ClientUnaryCall;
    stopTask(request: StopTaskRequest, metadata: Metadata, callback: (error: ServiceError | null, response: StopTaskResponse) => void): ClientUnaryCall;
    stopTask(request: StopTaskRequest, metadata: Metadata, options: Partial<CallOptions>, callback: (error: ServiceError | null, response: StopTaskResponse) => void): ClientUnaryCall;
    /** Queue a STOPPED or FAILED task again from its last (or a named) checkpoint. */
    resumeTask(request: ResumeTaskRequest, callback: (error: ServiceError | null, response: ResumeTaskResponse) => void): ClientUnaryCall;
    resumeTask(request: ResumeTaskRequest, metadata: Metadata, callback: (error: ServiceError | null, response: ResumeTaskResponse) => void): ClientUnaryCall;
    resumeTask(request: ResumeTaskRequest, metadata: Metadata, options: Partial<CallOptions>, callback: (error: ServiceError | null, response: ResumeTaskResponse) => void): ClientUnaryCall;
    /**
     * Replay the task's events after `after_seq` from the store, then follow
     * live ones until the task is terminal (or forever with `follow_forever`).
     */
    watchTask(request: WatchTaskRequest, options?: Partial<CallOptions>): ClientReadableStream<WatchTaskResponse>;
    watchTask(request: WatchTaskRequest, metadata?: Metadata, options?: Partial<CallOptions>): ClientReadableStream<WatchTaskResponse>;
    listMetrics(request: ListMetricsRequest, callback: (error: ServiceError | null, response: ListMetricsResponse) => void): ClientUnaryCall;
    listMetrics(request: ListMetricsRequest, metadata: Metadata, callback: (error: ServiceError | null, response: ListMetricsResponse) => void): ClientUnaryCall;
    listMetrics(request: ListMetricsRequest, metadata: Metadata, options: Partial<CallOptions>, callback: (error: ServiceError | null, response: ListMetricsResponse) => void): ClientUnaryCall;
    listCheckpoints(request: ListCheckpointsRequest, callback: (error: ServiceError | null, response: ListCheckpointsResponse) => void): ClientUnaryCall;
    listCheckpoints(request: ListCheckpointsRequest, metadata: Metadata, callback: (error: ServiceError | null, response: ListCheckpointsResponse) => void): ClientUnaryCall;
    listCheckpoints(request: ListCheckpointsRequest, metadata: Metadata, options: Partial<CallOptions>, callback: (error: ServiceError | null, response: ListCheckpointsResponse) => void): ClientUnaryCall;
    /**
     * How many checkpoints (= quota units) a task or a parameter set will use, and
     * its steps, tokens, wall time and peak memory on this host, with the data reports.
     */
    estimateQuota(request: EstimateQuotaRequest, callback: (error: ServiceError | null, response: EstimateQuotaResponse) => void): ClientUnaryCall;
    estimateQuota(request: EstimateQuotaRequest, metadata: Metadata, callback: (error: ServiceError | null, response: EstimateQuotaResponse) => void): ClientUnaryCall;
    estimateQuota(request: EstimateQuotaRequest, metadata: Metadata, options: Partial<CallOptions>, callback: (error: ServiceError | null, response: EstimateQuotaResponse) => void): ClientUnaryCall;
    /**
     * The schema of every parameter, so a front end renders the form without
     * hard-coding it.
     */
    getParamSchema(request: GetParamSchemaRequest, callback: (error: ServiceError | null, response: GetParamSchemaResponse) => void): ClientUnaryCall;
    getParamSchema(request: GetParamSchemaRequest, metadata: Metadata, callback: (error: ServiceError | null, response: GetParamSchemaResponse) => void): ClientUnaryCall;
    getParamSchema(request: GetParamSchemaRequest, metadata: Metadata, options: Partial<CallOptions>, callback: (error: ServiceError | null, response: GetParamSchemaResponse) => void): ClientUnaryCall;
    listTemplates(request: ListTemplatesRequest, callback: (error: ServiceError | null, response: ListTemplatesResponse) => void): ClientUnaryCall;
    listTemplates(request: ListTemplatesRequest, metadata: Metadata, callback: (error: ServiceError | null, response: ListTemplatesResponse) => void): ClientUnaryCall;
    listTemplates(request: ListTemplatesRequest, metadata: Metadata, options: Partial<CallOptions>, callback: (error: ServiceError | null, response: ListTemplatesResponse) => void): ClientUnaryCall;
    getTemplate(request: GetTemplateRequest, callback: (error: ServiceError | null, response: GetTemplateResponse) => void): ClientUnaryCall;
    getTemplate(request: GetTemplateRequest, metadata: Metadata, callback: (error: ServiceError | null, response: GetTemplateResponse) => void): ClientUnaryCall;
    getTemplate(request: GetTemplateRequest, metadata: Metadata, options: Partial<CallOptions>, callback: (error: ServiceError | null, response: GetTemplateResponse) => void): ClientUnaryCall;
    saveTemplate(request: SaveTemplateRequest, callback: (error: ServiceError | null, response: SaveTemplateResponse) => void): ClientUnaryCall;
    saveTemplate(request: SaveTemplateRequest, metadata: Metadata, callback: (error: ServiceError | null, response: SaveTemplateResponse) => void): ClientUnaryCall;
    saveTemplate(request: SaveTemplateRequest, metadata: Metadata, options: Partial<CallOptions>, callback: (error: ServiceError | null, response: SaveTemplateResponse) => void): ClientUnaryCall;
    deleteTemplate(request: DeleteTemplateRequest, callback: (error: ServiceError | null, response: DeleteTemplateResponse) => void): ClientUnaryCall;
    deleteTemplate(request: DeleteTemplateRequest, metadata: Metadata, callback: (error: ServiceError | null, response: DeleteTemplateResponse) => void): ClientUnaryCall;
    deleteTemplate(request: DeleteTemplateRequest, metadata: Metadata, options: Partial<CallOptions>, callback: (error: ServiceError | null, response: DeleteTemplateResponse) => void): ClientUnaryCall;
}
export declare const TrainingServiceClient: {
    new (address: string, credentials: ChannelCredentials, options?: Partial<ClientOptions>): TrainingServiceClient;
    service: typeof TrainingServiceService;
    serviceName: string;
};
type Builtin = Date | Function | Uint8Array | string | number | boolean | undefined;
export type DeepPartial<T> = T extends Builtin ? T : T extends globalThis.Array<infer U> ? globalThis.Array<DeepPartial<U>> : T extends ReadonlyArray<infer U> ? ReadonlyArray<DeepPartial<U>> : T extends {
    $case: string;
} ? {
    [K in keyof Omit<T, "$case">]?: DeepPartial<T[K]>;
} & {
    $case: T["$case"];
} : T extends {} ? {
    [K in keyof T]?: DeepPartial<T[K]>;
} : Partial<T>;
export interface MessageFns<T> {
    encode(message: T, writer?: BinaryWriter): BinaryWriter;
    decode(input: BinaryReader | Uint8Array, length?: number): T;
    fromJSON(object: any): T;
    toJSON(message: T): unknown;
    create(base?: DeepPartial<T>): T;
    fromPartial(object: DeepPartial<T>): T;
}
export {};
