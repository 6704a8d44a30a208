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
    /** system, user or assistant. */
    role: string;
    content: string;
}
export interface SamplingParams {
    /** 0 = greedy. */
    temperature?: number | undefined;
    topP?: number | undefined;
    topK?: number | undefined;
    repetitionPenalty?: number | undefined;
    maxNewTokens?: number | undefined;
    seed?: string | undefined;
    stop: string[];
}
export interface ChatRequest {
    taskId: string;
    target: //
    /** Checkpoint id or step of the task. */
    {
        $case: "checkpoint";
        checkpoint: string;
    } | //
    /** A package id of the task (GGUF through llama.cpp). */
    {
        $case: "packageId";
        packageId: string;
    } | //
    /** The task's base model, to compare before and after. */
    {
        $case: "base";
        base: boolean;
    } | undefined;
    messages: ChatMessage[];
    systemPrompt: string;
    sampling: SamplingParams | undefined;
    device: DevicePreference;
}
export interface ChatDelta {
    text: string;
    tokenIds: number[];
}
export interface ChatDone {
    finishReason: FinishReason;
    promptTokens: number;
    completionTokens: number;
    timeToFirstTokenMs: number;
    tokensPerSecond: number;
    text: string;
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
    key: string;
    taskId: string;
    target: string;
    backend: string;
    device: string;
    memoryBytes: string;
    lastUsedTime: Timestamp | undefined;
}
export interface ListLoadedModelsRequest {
}
export interface ListLoadedModelsResponse {
    models: LoadedModel[];
    memoryLimitBytes: string;
}
export interface UnloadModelRequest {
    /** A key from ListLoadedModels; empty = unload all. */
    key: string;
}
export interface UnloadModelResponse {
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
/** InferenceService lets a person chat with any checkpoint, the base model or a package. */
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
