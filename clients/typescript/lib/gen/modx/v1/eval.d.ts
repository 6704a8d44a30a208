import { BinaryReader, BinaryWriter } from "@bufbuild/protobuf/wire";
import { type CallOptions, type ChannelCredentials, Client, type ClientOptions, type ClientReadableStream, type ClientUnaryCall, type handleServerStreamingCall, type handleUnaryCall, type Metadata, type ServiceError, type UntypedServiceImplementation } from "@grpc/grpc-js";
import { Timestamp } from "../../google/protobuf/timestamp";
import { FileChunk, JobState, LogLine, PageRequest } from "./common";
import { ChatMessage } from "./inference";
export declare const protobufPackage = "modx.v1";
export declare const protobufFileName = "modx/v1/eval.proto";
/**
 * How answers are generated for the similarity, coherence and coverage scores.
 * 0 in any field = its default.
 */
export interface GenerationSettings {
    /** 0 = greedy decoding (the default for evaluation), else 0.01 to 5 (chat's range). */
    temperature: number;
    /** (0, 1]; 0 = 1.0 (off). */
    topP: number;
    /** 0 = off; at most 1000000. */
    topK: number;
    /** 0 = 1.0 (off), else 0.01 to 10. */
    repetitionPenalty: number;
    /** 0 = 128; at most the daemon's max_chat_tokens. */
    maxNewTokens: number;
    seed: string;
}
export interface CheckpointScore {
    /**
     * Checkpoint id, or "base" for the base model. Either is a valid `checkpoint`
     * for Chat and CreatePackage.
     */
    checkpointId: string;
    /** For people: "step 40", "base model". */
    label: string;
    /** 0 for the base model. */
    step: string;
    /** Of the reference answers (SFT) or held-out text (pretraining): lower is better. */
    perplexity: number;
    /** The same, per UTF-8 byte (comparable across tokenizers): lower is better. */
    bitsPerByte: number;
    /** 0 to 1, higher is better; unset where not measured (pretraining). */
    semanticSimilarity?: number | undefined;
    coherence?: number | undefined;
    coverage?: number | undefined;
    /**
     * 0 to 1, higher is better: the weighted mean of 2^-bits_per_byte and the three
     * scores above (docs/evaluation.md gives the weights).
     */
    composite: number;
    /** 1 = best. */
    rank: number;
    isBest: boolean;
    /**
     * Preference tasks (dpo, orpo) only, on held-out pairs (the eval file or split, else sampled
     * training pairs): the share of pairs whose chosen answer gets the higher reward margin against
     * the checkpoint's reference (0 to 1, higher is better), the mean margin and the pairs scored
     * (docs/preference.md). The scores above (perplexity, similarity, ..., composite) treat each
     * pair's prompt + chosen answer as an SFT conversation; the rank stays the composite's.
     */
    preferenceAccuracy?: number | undefined;
    preferenceMargin?: number | undefined;
    preferencePairs?: number | undefined;
}
export interface Evaluation {
    id: string;
    taskId: string;
    state: JobState;
    /** Why it failed or was cancelled (empty otherwise). */
    stateReason: string;
    /** The checkpoints compared (the base model is in include_base, not here). */
    checkpointIds: string[];
    includeBase: boolean;
    /** Examples scored per checkpoint. */
    samples: number;
    /** The settings used, defaults filled in. */
    generation: GenerationSettings | undefined;
    /** Best first (by rank). */
    scores: CheckpointScore[];
    /** A checkpoint id, or "base" when the base model scored best. */
    bestCheckpointId: string;
    /** "best beats runner-up (p=0.01)" or "tie within noise". */
    verdict: string;
    /**
     * Files on the daemon's host: the Markdown report (report.md), the scores
     * table (scores.csv) and every example's answers (examples.jsonl). Any client
     * reads them with ReadEvaluationFile (by name) and ListEvaluationExamples.
     */
    reportPath: string;
    csvPath: string;
    examplesPath: string;
    createTime: Timestamp | undefined;
    endTime: Timestamp | undefined;
}
export interface EvalProgress {
    /** 0-based index of the checkpoint being scored, of checkpoint_count. */
    checkpointIndex: number;
    checkpointCount: number;
    /** Examples of that checkpoint done so far, of example_count. */
    exampleIndex: number;
    exampleCount: number;
    checkpointId: string;
    /** The means so far: "perplexity", and for SFT "similarity", "coherence", "coverage". */
    runningScores: {
        [key: string]: number;
    };
}
export interface EvalProgress_RunningScoresEntry {
    key: string;
    value: number;
}
export interface EvalEvent {
    evaluationId: string;
    seq: string;
    time: Timestamp | undefined;
    payload: {
        $case: "state";
        state: JobState;
    } | {
        $case: "progress";
        progress: EvalProgress;
    } | {
        $case: "log";
        log: LogLine;
    } | {
        $case: "score";
        score: CheckpointScore;
    } | undefined;
}
export interface CreateEvaluationRequest {
    taskId: string;
    /**
     * Checkpoint ids or step numbers (or the single value "all"): at least two,
     * or one with include_base (the checkpoint against the base model).
     */
    checkpoints: string[];
    /** Also score the task's base model (its id in the scores is "base"). */
    includeBase: boolean;
    /**
     * Examples per checkpoint: from the eval file or held-out split, else sampled
     * from the training data. 0 = 50; at most 10000.
     */
    samples: number;
    /** Seed of the sampling (the same seed picks the same examples). */
    seed: string;
    generation: GenerationSettings | undefined;
}
export interface CreateEvaluationResponse {
    evaluation: Evaluation | undefined;
}
export interface GetEvaluationRequest {
    evaluationId: string;
}
export interface GetEvaluationResponse {
    evaluation: Evaluation | undefined;
}
export interface ListEvaluationsRequest {
    taskId: string;
    page: PageRequest | undefined;
}
export interface ListEvaluationsResponse {
    evaluations: Evaluation[];
    nextPageToken: string;
}
export interface WatchEvaluationRequest {
    evaluationId: string;
    /** Replay events with seq > after_seq (0 = from the beginning), then follow. */
    afterSeq: string;
}
export interface WatchEvaluationResponse {
    event: EvalEvent | undefined;
}
/** One line of an evaluation's examples.jsonl: one candidate on one example. */
export interface EvalExample {
    /** Checkpoint id, or "base" for the base model. */
    checkpointId: string;
    /** For people: "step 40", "base model". */
    label: string;
    /** 0 for the base model. */
    step: string;
    /**
     * 0-based index of the example in the evaluation's data: the same index is the
     * same example for every candidate.
     */
    example: number;
    /**
     * SFT: the messages before the answer, the reference answer and the one the
     * candidate generated (with the evaluation's GenerationSettings).
     */
    prompt: ChatMessage[];
    reference: string;
    generation: string;
    /** Pretraining: the text scored (SFT: empty). */
    text: string;
    /**
     * Of the reference answer (SFT) or the text (pretraining): the tokens and UTF-8
     * bytes the perplexity is measured on.
     */
    answerTokens: string;
    answerBytes: string;
    /** Summed negative log-likelihood over answer_tokens, in nats. */
    nll?: number | undefined;
    /** Lower is better; unset where nothing was measured (no answer tokens). */
    perplexity?: number | undefined;
    bitsPerByte?: number | undefined;
    /** 0 to 1, higher is better; unset where not measured (pretraining). */
    semanticSimilarity?: number | undefined;
    coherence?: number | undefined;
    coverage?: number | undefined;
    /** 0 to 1, higher is better: this example's composite (CheckpointScore.composite). */
    composite?: number | undefined;
    /** The line of examples.jsonl it was read from (1-based). */
    line: string;
}
export interface ListEvaluationExamplesRequest {
    evaluationId: string;
    /**
     * Only this candidate's examples: a checkpoint id of the evaluation, or "base".
     * Empty = every candidate.
     */
    checkpointId: string;
    /**
     * page_size 0 = 50, at most 1000; a page also ends early rather than pass
     * 2 MiB of text (next_page_token then says where it goes on).
     */
    page: PageRequest | undefined;
}
export interface ListEvaluationExamplesResponse {
    examples: EvalExample[];
    nextPageToken: string;
}
export interface ReadEvaluationFileRequest {
    evaluationId: string;
    /**
     * The file's name: "report.md", "scores.csv", "examples.jsonl", "scores.png" or
     * "result.json" (those the evaluation wrote; Evaluation.report_path, csv_path and
     * examples_path end in the first three).
     */
    name: string;
    /** Start at this byte (resume an interrupted download); 0 to the file's size. */
    offset: string;
}
export interface ReadEvaluationFileResponse {
    chunk: FileChunk | undefined;
}
export declare const GenerationSettings: MessageFns<GenerationSettings>;
export declare const CheckpointScore: MessageFns<CheckpointScore>;
export declare const Evaluation: MessageFns<Evaluation>;
export declare const EvalProgress: MessageFns<EvalProgress>;
export declare const EvalProgress_RunningScoresEntry: MessageFns<EvalProgress_RunningScoresEntry>;
export declare const EvalEvent: MessageFns<EvalEvent>;
export declare const CreateEvaluationRequest: MessageFns<CreateEvaluationRequest>;
export declare const CreateEvaluationResponse: MessageFns<CreateEvaluationResponse>;
export declare const GetEvaluationRequest: MessageFns<GetEvaluationRequest>;
export declare const GetEvaluationResponse: MessageFns<GetEvaluationResponse>;
export declare const ListEvaluationsRequest: MessageFns<ListEvaluationsRequest>;
export declare const ListEvaluationsResponse: MessageFns<ListEvaluationsResponse>;
export declare const WatchEvaluationRequest: MessageFns<WatchEvaluationRequest>;
export declare const WatchEvaluationResponse: MessageFns<WatchEvaluationResponse>;
export declare const EvalExample: MessageFns<EvalExample>;
export declare const ListEvaluationExamplesRequest: MessageFns<ListEvaluationExamplesRequest>;
export declare const ListEvaluationExamplesResponse: MessageFns<ListEvaluationExamplesResponse>;
export declare const ReadEvaluationFileRequest: MessageFns<ReadEvaluationFileRequest>;
export declare const ReadEvaluationFileResponse: MessageFns<ReadEvaluationFileResponse>;
/**
 * EvalService compares checkpoints of a task on sampled data and recommends the best.
 * The report, CSV and per-example answers go to <task output_dir>/eval/<evaluation id>/
 * (served by ListEvaluationExamples and ReadEvaluationFile).
 */
export type EvalServiceService = typeof EvalServiceService;
export declare const EvalServiceService: {
    readonly createEvaluation: {
        readonly path: "/modx.v1.EvalService/CreateEvaluation";
        readonly requestStream: false;
        readonly responseStream: false;
        readonly requestSerialize: (value: CreateEvaluationRequest) => Buffer;
        readonly requestDeserialize: (value: Buffer) => CreateEvaluationRequest;
        readonly responseSerialize: (value: CreateEvaluationResponse) => Buffer;
        readonly responseDeserialize: (value: Buffer) => CreateEvaluationResponse;
    };
    readonly getEvaluation: {
        readonly path: "/modx.v1.EvalService/GetEvaluation";
        readonly requestStream: false;
        readonly responseStream: false;
        readonly requestSerialize: (value: GetEvaluationRequest) => Buffer;
        readonly requestDeserialize: (value: Buffer) => GetEvaluationRequest;
        readonly responseSerialize: (value: GetEvaluationResponse) => Buffer;
        readonly responseDeserialize: (value: Buffer) => GetEvaluationResponse;
    };
    readonly listEvaluations: {
        readonly path: "/modx.v1.EvalService/ListEvaluations";
        readonly requestStream: false;
        readonly responseStream: false;
        readonly requestSerialize: (value: ListEvaluationsRequest) => Buffer;
        readonly requestDeserialize: (value: Buffer) => ListEvaluationsRequest;
        readonly responseSerialize: (value: ListEvaluationsResponse) => Buffer;
        readonly responseDeserialize: (value: Buffer) => ListEvaluationsResponse;
    };
    /** Replay the evaluation's events after `after_seq`, then follow live ones. */
    readonly watchEvaluation: {
        readonly path: "/modx.v1.EvalService/WatchEvaluation";
        readonly requestStream: false;
        readonly responseStream: true;
        readonly requestSerialize: (value: WatchEvaluationRequest) => Buffer;
        readonly requestDeserialize: (value: Buffer) => WatchEvaluationRequest;
        readonly responseSerialize: (value: WatchEvaluationResponse) => Buffer;
        readonly responseDeserialize: (value: Buffer) => WatchEvaluationResponse;
    };
    /**
     * The per-example records of a completed evaluation (its examples.jsonl), in the
     * file's order: for each candidate (base model first, then by step) every example.
     */
    readonly listEvaluationExamples: {
        readonly path: "/modx.v1.EvalService/ListEvaluationExamples";
        readonly requestStream: false;
        readonly responseStream: false;
        readonly requestSerialize: (value: ListEvaluationExamplesRequest) => Buffer;
        readonly requestDeserialize: (value: Buffer) => ListEvaluationExamplesRequest;
        readonly responseSerialize: (value: ListEvaluationExamplesResponse) => Buffer;
        readonly responseDeserialize: (value: Buffer) => ListEvaluationExamplesResponse;
    };
    /**
     * Download a file the evaluation wrote (report.md, scores.csv, examples.jsonl,
     * scores.png, result.json) in chunks; FileChunk says where the SHA-256 is.
     */
    readonly readEvaluationFile: {
        readonly path: "/modx.v1.EvalService/ReadEvaluationFile";
        readonly requestStream: false;
        readonly responseStream: true;
        readonly requestSerialize: (value: ReadEvaluationFileRequest) => Buffer;
        readonly requestDeserialize: (value: Buffer) => ReadEvaluationFileRequest;
        readonly responseSerialize: (value: ReadEvaluationFileResponse) => Buffer;
        readonly responseDeserialize: (value: Buffer) => ReadEvaluationFileResponse;
    };
};
export interface EvalServiceServer extends UntypedServiceImplementation {
    createEvaluation: handleUnaryCall<CreateEvaluationRequest, CreateEvaluationResponse>;
    getEvaluation: handleUnaryCall<GetEvaluationRequest, GetEvaluationResponse>;
    listEvaluations: handleUnaryCall<ListEvaluationsRequest, ListEvaluationsResponse>;
    /** Replay the evaluation's events after `after_seq`, then follow live ones. */
    watchEvaluation: handleServerStreamingCall<WatchEvaluationRequest, WatchEvaluationResponse>;
    /**
     * The per-example records of a completed evaluation (its examples.jsonl), in the
     * file's order: for each candidate (base model first, then by step) every example.
     */
    listEvaluationExamples: handleUnaryCall<ListEvaluationExamplesRequest, ListEvaluationExamplesResponse>;
    /**
     * Download a file the evaluation wrote (report.md, scores.csv, examples.jsonl,
     * scores.png, result.json) in chunks; FileChunk says where the SHA-256 is.
     */
    readEvaluationFile: handleServerStreamingCall<ReadEvaluationFileRequest, ReadEvaluationFileResponse>;
}
export interface EvalServiceClient extends Client {
    createEvaluation(request: CreateEvaluationRequest, callback: (error: ServiceError | null, response: CreateEvaluationResponse) => void): ClientUnaryCall;
    createEvaluation(request: CreateEvaluationRequest, metadata: Metadata, callback: (error: ServiceError | null, response: CreateEvaluationResponse) => void): ClientUnaryCall;
    createEvaluation(request: CreateEvaluationRequest, metadata: Metadata, options: Partial<CallOptions>, callback: (error: ServiceError | null, response: CreateEvaluationResponse) => void): ClientUnaryCall;
    getEvaluation(request: GetEvaluationRequest, callback: (error: ServiceError | null, response: GetEvaluationResponse) => void): ClientUnaryCall;
    getEvaluation(request: GetEvaluationRequest, metadata: Metadata, callback: (error: ServiceError | null, response: GetEvaluationResponse) => void): ClientUnaryCall;
    getEvaluation(request: GetEvaluationRequest, metadata: Metadata, options: Partial<CallOptions>, callback: (error: ServiceError | null, response: GetEvaluationResponse) => void): ClientUnaryCall;
    listEvaluations(request: ListEvaluationsRequest, callback: (error: ServiceError | null, response: ListEvaluationsResponse) => void): ClientUnaryCall;
    listEvaluations(request: ListEvaluationsRequest, metadata: Metadata, callback: (error: ServiceError | null, response: ListEvaluationsResponse) => void): ClientUnaryCall;
    listEvaluations(request: ListEvaluationsRequest, metadata: Metadata, options: Partial<CallOptions>, callback: (error: ServiceError | null, response: ListEvaluationsResponse) => void): ClientUnaryCall;
    /** Replay the evaluation's events after `after_seq`, then follow live ones. */
    watchEvaluation(request: WatchEvaluationRequest, options?: Partial<CallOptions>): ClientReadableStream<WatchEvaluationResponse>;
    watchEvaluation(request: WatchEvaluationRequest, metadata?: Metadata, options?: Partial<CallOptions>): ClientReadableStream<WatchEvaluationResponse>;
    /**
     * The per-example records of a completed evaluation (its examples.jsonl), in the
     * file's order: for each candidate (base model first, then by step) every example.
     */
    listEvaluationExamples(request: ListEvaluationExamplesRequest, callback: (error: ServiceError | null, response: ListEvaluationExamplesResponse) => void): ClientUnaryCall;
    listEvaluationExamples(request: ListEvaluationExamplesRequest, metadata: Metadata, callback: (error: ServiceError | null, response: ListEvaluationExamplesResponse) => void): ClientUnaryCall;
    listEvaluationExamples(request: ListEvaluationExamplesRequest, metadata: Metadata, options: Partial<CallOptions>, callback: (error: ServiceError | null, response: ListEvaluationExamplesResponse) => void): ClientUnaryCall;
    /**
     * Download a file the evaluation wrote (report.md, scores.csv, examples.jsonl,
     * scores.png, result.json) in chunks; FileChunk says where the SHA-256 is.
     */
    readEvaluationFile(request: ReadEvaluationFileRequest, options?: Partial<CallOptions>): ClientReadableStream<ReadEvaluationFileResponse>;
    readEvaluationFile(request: ReadEvaluationFileRequest, metadata?: Metadata, options?: Partial<CallOptions>): ClientReadableStream<ReadEvaluationFileResponse>;
}
export declare const EvalServiceClient: {
    new (address: string, credentials: ChannelCredentials, options?: Partial<ClientOptions>): EvalServiceClient;
    service: typeof EvalServiceService;
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
