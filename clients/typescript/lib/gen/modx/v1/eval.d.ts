import { BinaryReader, BinaryWriter } from "@bufbuild/protobuf/wire";
import { type CallOptions, type ChannelCredentials, Client, type ClientOptions, type ClientReadableStream, type ClientUnaryCall, type handleServerStreamingCall, type handleUnaryCall, type Metadata, type ServiceError, type UntypedServiceImplementation } from "@grpc/grpc-js";
import { Timestamp } from "../../google/protobuf/timestamp";
import { JobState, LogLine, PageRequest } from "./common";
export declare const protobufPackage = "modx.v1";
export declare const protobufFileName = "modx/v1/eval.proto";
export interface GenerationSettings {
    /** 0 = greedy decoding (the default for evaluation). */
    temperature: number;
    topP: number;
    topK: number;
    repetitionPenalty: number;
    maxNewTokens: number;
    seed: string;
}
export interface CheckpointScore {
    /** Checkpoint id, or "base" for the base model. */
    checkpointId: string;
    label: string;
    step: string;
    perplexity: number;
    bitsPerByte: number;
    semanticSimilarity?: number | undefined;
    coherence?: number | undefined;
    coverage?: number | undefined;
    composite: number;
    rank: number;
    isBest: boolean;
}
export interface Evaluation {
    id: string;
    taskId: string;
    state: JobState;
    stateReason: string;
    checkpointIds: string[];
    includeBase: boolean;
    samples: number;
    generation: GenerationSettings | undefined;
    scores: CheckpointScore[];
    bestCheckpointId: string;
    /** "best beats runner-up (p=0.01)" or "tie within noise". */
    verdict: string;
    reportPath: string;
    csvPath: string;
    examplesPath: string;
    createTime: Timestamp | undefined;
    endTime: Timestamp | undefined;
}
export interface EvalProgress {
    checkpointIndex: number;
    checkpointCount: number;
    exampleIndex: number;
    exampleCount: number;
    checkpointId: string;
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
    /** Checkpoint ids or step numbers, at least two (or the single value "all"). */
    checkpoints: string[];
    includeBase: boolean;
    /** Examples sampled from the training data when the task has no eval file. */
    samples: number;
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
    afterSeq: string;
}
export interface WatchEvaluationResponse {
    event: EvalEvent | undefined;
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
/** EvalService compares checkpoints of a task on sampled data and recommends the best. */
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
};
export interface EvalServiceServer extends UntypedServiceImplementation {
    createEvaluation: handleUnaryCall<CreateEvaluationRequest, CreateEvaluationResponse>;
    getEvaluation: handleUnaryCall<GetEvaluationRequest, GetEvaluationResponse>;
    listEvaluations: handleUnaryCall<ListEvaluationsRequest, ListEvaluationsResponse>;
    /** Replay the evaluation's events after `after_seq`, then follow live ones. */
    watchEvaluation: handleServerStreamingCall<WatchEvaluationRequest, WatchEvaluationResponse>;
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
