import { BinaryReader, BinaryWriter } from "@bufbuild/protobuf/wire";
import { type CallOptions, type ChannelCredentials, Client, type ClientOptions, type ClientReadableStream, type ClientUnaryCall, type handleServerStreamingCall, type handleUnaryCall, type Metadata, type ServiceError, type UntypedServiceImplementation } from "@grpc/grpc-js";
import { Timestamp } from "../../google/protobuf/timestamp";
export declare const protobufPackage = "modx.v1";
export declare const protobufFileName = "modx/v1/inference.proto";
export declare enum DevicePreference {
    /** DEVICE_PREFERENCE_UNSPECIFIED - the daemon chooses */
    DEVICE_PREFERENCE_UNSPECIFIED = 0,
    DEVICE_PREFERENCE_CPU = 1,
    DEVICE_PREFERENCE_ACCELERATOR = 2,
    UNRECOGNIZED = -1
}
export declare function devicePreferenceFromJSON(object: any): DevicePreference;
export declare function devicePreferenceToJSON(object: DevicePreference): string;
export declare enum FinishReason {
    FINISH_REASON_UNSPECIFIED = 0,
    FINISH_REASON_STOP_TOKEN = 1,
    FINISH_REASON_LENGTH = 2,
    FINISH_REASON_STOP_STRING = 3,
    FINISH_REASON_CANCELLED = 4,
    UNRECOGNIZED = -1
}
export declare function finishReasonFromJSON(object: any): FinishReason;
export declare function finishReasonToJSON(object: FinishReason): string;
export interface ChatMessage {
    /**
     * system, user or assistant. The conversation so far, oldest first, ending with
     * the user's turn; the reply is not stored anywhere by the daemon.
     */
    role: string;
    content: string;
}
/** Each field left unset takes the daemon's default, given here. */
export interface SamplingParams {
    /** 0 = greedy, else 0.01 to 5 (smaller values overflow the logits). Default 0.7. */
    temperature?: number | undefined;
    /** Nucleus sampling, (0, 1]. Default 0.9. */
    topP?: number | undefined;
    /** 0 = off; at most 1000000. Default 50. */
    topK?: number | undefined;
    /** 0.01 to 10; 1 = off, above 1 discourages repeats. Default 1.1. */
    repetitionPenalty?: number | undefined;
    /** Default 512; at most the daemon's max_chat_tokens (RESOURCE_EXHAUSTED above it). */
    maxNewTokens?: number | undefined;
    /**
     * 0 to 2^32-1. Unset = a fresh random seed per reply; set = the same reply for
     * the same input on the same model.
     */
    seed?: string | undefined;
    /** Strings that end the reply (not included in it); at most 16 of 256 characters. */
    stop: string[];
}
export interface ChatRequest {
    taskId: string;
    /**
     * What answers. None set: the task's latest checkpoint (FAILED_PRECONDITION when
     * it has none yet: chat with the base model then).
     */
    target: //
    /**
     * Checkpoint id, step or path of the task; "merged" for the model that
     * merge_lora_after_training wrote; "base" for the base model (an evaluation's
     * best_checkpoint_id may be "base").
     */
    {
        $case: "checkpoint";
        checkpoint: string;
    } | //
    /**
     * A completed package of the task (GGUF through llama.cpp). Its model file of
     * the highest precision is used (F32, BF16, F16, Q8_0, Q6_K, … Q2_K), with its
     * LoRA adapter file when the package was not merged.
     */
    {
        $case: "packageId";
        packageId: string;
    } | //
    /** The task's base model (model_dir), to compare before and after. */
    {
        $case: "base";
        base: boolean;
    } | undefined;
    messages: ChatMessage[];
    /** Put first as a system message (empty = none, or the messages' own). */
    systemPrompt: string;
    sampling: SamplingParams | undefined;
    device: DevicePreference;
}
/** New text of the reply; the concatenation of every delta is ChatDone.text. */
export interface ChatDelta {
    text: string;
    /** The tokens the text came from (the model's own vocabulary). */
    tokenIds: number[];
}
/** The last message of a reply. */
export interface ChatDone {
    finishReason: FinishReason;
    promptTokens: number;
    completionTokens: number;
    /** From the request's arrival to the first token, model loading included. */
    timeToFirstTokenMs: number;
    /** The decode rate: tokens after the first, per second. */
    tokensPerSecond: number;
    /** The whole reply. */
    text: string;
    /** The cache key of the model that answered (see ListLoadedModels). */
    modelKey: string;
}
export interface ChatResponse {
    payload: {
        $case: "delta";
        delta: ChatDelta;
    } | {
        $case: "done";
        done: ChatDone;
    } | undefined;
}
export interface LoadedModel {
    /**
     * "<task id>/<checkpoint id>@<device>", "<task id>/base@cpu",
     * "<task id>/<package id>/<quant>@<device>".
     */
    key: string;
    taskId: string;
    /** For people: "checkpoint ckpt-…", "base", "package pkg-… Q4_K_M (+ adapter)". */
    target: string;
    /** "hf" (transformers) or "gguf" (llama.cpp). */
    backend: string;
    /** "cpu" or "cuda:N". */
    device: string;
    /** Estimated memory the model holds. */
    memoryBytes: string;
    lastUsedTime: Timestamp | undefined;
}
export interface ListLoadedModelsRequest {
}
export interface ListLoadedModelsResponse {
    models: LoadedModel[];
    /** What the cache may hold before it evicts the least recently used model. */
    memoryLimitBytes: string;
}
export interface UnloadModelRequest {
    /** A key from ListLoadedModels; empty = unload all. */
    key: string;
}
export interface UnloadModelResponse {
    /** How many models were unloaded. */
    unloaded: number;
}
export declare const ChatMessage: MessageFns<ChatMessage>;
export declare const SamplingParams: MessageFns<SamplingParams>;
export declare const ChatRequest: MessageFns<ChatRequest>;
export declare const ChatDelta: MessageFns<ChatDelta>;
export declare const ChatDone: MessageFns<ChatDone>;
export declare const ChatResponse: MessageFns<ChatResponse>;
export declare const LoadedModel: MessageFns<LoadedModel>;
export declare const ListLoadedModelsRequest: MessageFns<ListLoadedModelsRequest>;
export declare const ListLoadedModelsResponse: MessageFns<ListLoadedModelsResponse>;
export declare const UnloadModelRequest: MessageFns<UnloadModelRequest>;
export declare const UnloadModelResponse: MessageFns<UnloadModelResponse>;
/**
 * InferenceService lets a person chat with any checkpoint, the base model or a package.
 * Models load on first use into a cache (ListLoadedModels) and stay until evicted
 * for room or unloaded.
 */
export type InferenceServiceService = typeof InferenceServiceService;
export declare const InferenceServiceService: {
    /** Stream the reply token by token, then one final `done` message. */
    readonly chat: {
        readonly path: "/modx.v1.InferenceService/Chat";
        readonly requestStream: false;
        readonly responseStream: true;
        readonly requestSerialize: (value: ChatRequest) => Buffer;
        readonly requestDeserialize: (value: Buffer) => ChatRequest;
        readonly responseSerialize: (value: ChatResponse) => Buffer;
        readonly responseDeserialize: (value: Buffer) => ChatResponse;
    };
    readonly listLoadedModels: {
        readonly path: "/modx.v1.InferenceService/ListLoadedModels";
        readonly requestStream: false;
        readonly responseStream: false;
        readonly requestSerialize: (value: ListLoadedModelsRequest) => Buffer;
        readonly requestDeserialize: (value: Buffer) => ListLoadedModelsRequest;
        readonly responseSerialize: (value: ListLoadedModelsResponse) => Buffer;
        readonly responseDeserialize: (value: Buffer) => ListLoadedModelsResponse;
    };
    readonly unloadModel: {
        readonly path: "/modx.v1.InferenceService/UnloadModel";
        readonly requestStream: false;
        readonly responseStream: false;
        readonly requestSerialize: (value: UnloadModelRequest) => Buffer;
        readonly requestDeserialize: (value: Buffer) => UnloadModelRequest;
        readonly responseSerialize: (value: UnloadModelResponse) => Buffer;
        readonly responseDeserialize: (value: Buffer) => UnloadModelResponse;
    };
};
export interface InferenceServiceServer extends UntypedServiceImplementation {
    /** Stream the reply token by token, then one final `done` message. */
    chat: handleServerStreamingCall<ChatRequest, ChatResponse>;
    listLoadedModels: handleUnaryCall<ListLoadedModelsRequest, ListLoadedModelsResponse>;
    unloadModel: handleUnaryCall<UnloadModelRequest, UnloadModelResponse>;
}
export interface InferenceServiceClient extends Client {
    /** Stream the reply token by token, then one final `done` message. */
    chat(request: ChatRequest, options?: Partial<CallOptions>): ClientReadableStream<ChatResponse>;
    chat(request: ChatRequest, metadata?: Metadata, options?: Partial<CallOptions>): ClientReadableStream<ChatResponse>;
    listLoadedModels(request: ListLoadedModelsRequest, callback: (error: ServiceError | null, response: ListLoadedModelsResponse) => void): ClientUnaryCall;
    listLoadedModels(request: ListLoadedModelsRequest, metadata: Metadata, callback: (error: ServiceError | null, response: ListLoadedModelsResponse) => void): ClientUnaryCall;
    listLoadedModels(request: ListLoadedModelsRequest, metadata: Metadata, options: Partial<CallOptions>, callback: (error: ServiceError | null, response: ListLoadedModelsResponse) => void): ClientUnaryCall;
    unloadModel(request: UnloadModelRequest, callback: (error: ServiceError | null, response: UnloadModelResponse) => void): ClientUnaryCall;
    unloadModel(request: UnloadModelRequest, metadata: Metadata, callback: (error: ServiceError | null, response: UnloadModelResponse) => void): ClientUnaryCall;
    unloadModel(request: UnloadModelRequest, metadata: Metadata, options: Partial<CallOptions>, callback: (error: ServiceError | null, response: UnloadModelResponse) => void): ClientUnaryCall;
}
export declare const InferenceServiceClient: {
    new (address: string, credentials: ChannelCredentials, options?: Partial<ClientOptions>): InferenceServiceClient;
    service: typeof InferenceServiceService;
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
