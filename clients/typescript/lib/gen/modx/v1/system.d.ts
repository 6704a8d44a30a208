import { BinaryReader, BinaryWriter } from "@bufbuild/protobuf/wire";
import { type CallOptions, type ChannelCredentials, Client, type ClientOptions, type ClientUnaryCall, type handleUnaryCall, type Metadata, type ServiceError, type UntypedServiceImplementation } from "@grpc/grpc-js";
import { Timestamp } from "../../google/protobuf/timestamp";
export declare const protobufPackage = "modx.v1";
export declare const protobufFileName = "modx/v1/system.proto";
export interface DeviceSlot {
    /** "cpu" or "cuda:N". */
    device: string;
    /** Task id running there, empty when free. */
    taskId: string;
}
export interface GetStatusRequest {
}
export interface GetStatusResponse {
    /** modxd's version. */
    version: string;
    /** "modx.v1". */
    apiVersion: string;
    startTime: Timestamp | undefined;
    uptimeSeconds: number;
    stateDir: string;
    /** The gRPC address it listens on (unix:///path or host:port). */
    listen: string;
    devices: DeviceSlot[];
    tasksPending: number;
    tasksRunning: number;
    tasksTotal: number;
    /** Quota units left (one per checkpoint saved). */
    quotaBalance: string;
    /** The daemon's process id. */
    pid: number;
}
export interface Device {
    /** Index among devices of its kind (cuda:N). */
    index: number;
    name: string;
    /** "cuda", "mps" or "cpu". */
    kind: string;
    totalMemoryBytes: string;
    freeMemoryBytes: string;
    /** "8.6" (CUDA); empty elsewhere. */
    computeCapability: string;
    bf16Supported: boolean;
    fp16Supported: boolean;
    tf32Supported: boolean;
}
export interface GetEnvironmentRequest {
}
export interface GetEnvironmentResponse {
    pythonVersion: string;
    platform: string;
    torchVersion: string;
    cudaVersion: string;
    cudaAvailable: boolean;
    devices: Device[];
    /** Installed versions of transformers, peft, accelerate, gguf, llama-cpp-python, ... */
    packages: {
        [key: string]: string;
    };
    cpuCount: number;
    hostMemoryBytes: string;
}
export interface GetEnvironmentResponse_PackagesEntry {
    key: string;
    value: string;
}
export interface GetHardwareAdviceRequest {
    /** A model dir to size (its parameter count is read from the weights), or ... */
    modelDir: string;
    /** ... a parameter count in billions. */
    paramsBillion: number;
}
export interface VramGuidance {
    /** "<1B", "1-3B", "3-7B", "7-14B" */
    sizeClass: string;
    /** Device memory the seed's table asks for with LoRA and with full fine-tuning. */
    loraBytes: string;
    fullBytes: string;
}
export interface DeviceAdvice {
    device: Device | undefined;
    loraFits: boolean;
    fullFits: boolean;
    advice: string;
}
export interface GetHardwareAdviceResponse {
    /** The model's size in billions of parameters (as read or as given). */
    paramsBillion: number;
    /** The row of `table` for that size. */
    guidance: VramGuidance | undefined;
    /** The whole table, smallest class first. */
    table: VramGuidance[];
    devices: DeviceAdvice[];
    /** One sentence: what to do on this host. */
    recommendation: string;
}
export interface QuotaEntry {
    id: string;
    time: Timestamp | undefined;
    /** Positive for grants, -1 per saved checkpoint. */
    delta: string;
    balanceAfter: string;
    /** grant, checkpoint, initial */
    kind: string;
    taskId: string;
    checkpointId: string;
    note: string;
}
export interface GetQuotaRequest {
    /** Number of most recent ledger entries (0 = 50). */
    ledgerLimit: number;
}
export interface GetQuotaResponse {
    /** Units not yet spent; never below 0. */
    balance: string;
    /** Units spent on checkpoints, ever. */
    consumed: string;
    /** Units granted, the initial allowance included. */
    granted: string;
    /** Newest first. */
    ledger: QuotaEntry[];
    /**
     * Units of the balance held for checkpoints being written (a unit is reserved before each save,
     * debited when the checkpoint is recorded, released when the save fails or the run ends).
     */
    reserved: string;
}
export interface GrantQuotaRequest {
    /** Units to add, 1 to 1000000. */
    amount: string;
    /** Why (kept in the ledger entry). */
    note: string;
}
export interface GrantQuotaResponse {
    balance: string;
    entry: QuotaEntry | undefined;
}
export declare const DeviceSlot: MessageFns<DeviceSlot>;
export declare const GetStatusRequest: MessageFns<GetStatusRequest>;
export declare const GetStatusResponse: MessageFns<GetStatusResponse>;
export declare const Device: MessageFns<Device>;
export declare const GetEnvironmentRequest: MessageFns<GetEnvironmentRequest>;
export declare const GetEnvironmentResponse: MessageFns<GetEnvironmentResponse>;
export declare const GetEnvironmentResponse_PackagesEntry: MessageFns<GetEnvironmentResponse_PackagesEntry>;
export declare const GetHardwareAdviceRequest: MessageFns<GetHardwareAdviceRequest>;
export declare const VramGuidance: MessageFns<VramGuidance>;
export declare const DeviceAdvice: MessageFns<DeviceAdvice>;
export declare const GetHardwareAdviceResponse: MessageFns<GetHardwareAdviceResponse>;
export declare const QuotaEntry: MessageFns<QuotaEntry>;
export declare const GetQuotaRequest: MessageFns<GetQuotaRequest>;
export declare const GetQuotaResponse: MessageFns<GetQuotaResponse>;
export declare const GrantQuotaRequest: MessageFns<GrantQuotaRequest>;
export declare const GrantQuotaResponse: MessageFns<GrantQuotaResponse>;
/** SystemService describes the daemon, its host and the training quota. */
export type SystemServiceService = typeof SystemServiceService;
export declare const SystemServiceService: {
    readonly getStatus: {
        readonly path: "/modx.v1.SystemService/GetStatus";
        readonly requestStream: false;
        readonly responseStream: false;
        readonly requestSerialize: (value: GetStatusRequest) => Buffer;
        readonly requestDeserialize: (value: Buffer) => GetStatusRequest;
        readonly responseSerialize: (value: GetStatusResponse) => Buffer;
        readonly responseDeserialize: (value: Buffer) => GetStatusResponse;
    };
    readonly getEnvironment: {
        readonly path: "/modx.v1.SystemService/GetEnvironment";
        readonly requestStream: false;
        readonly responseStream: false;
        readonly requestSerialize: (value: GetEnvironmentRequest) => Buffer;
        readonly requestDeserialize: (value: Buffer) => GetEnvironmentRequest;
        readonly responseSerialize: (value: GetEnvironmentResponse) => Buffer;
        readonly responseDeserialize: (value: Buffer) => GetEnvironmentResponse;
    };
    /** The VRAM guidance of the seed checked against the detected devices. */
    readonly getHardwareAdvice: {
        readonly path: "/modx.v1.SystemService/GetHardwareAdvice";
        readonly requestStream: false;
        readonly responseStream: false;
        readonly requestSerialize: (value: GetHardwareAdviceRequest) => Buffer;
        readonly requestDeserialize: (value: Buffer) => GetHardwareAdviceRequest;
        readonly responseSerialize: (value: GetHardwareAdviceResponse) => Buffer;
        readonly responseDeserialize: (value: Buffer) => GetHardwareAdviceResponse;
    };
    readonly getQuota: {
        readonly path: "/modx.v1.SystemService/GetQuota";
        readonly requestStream: false;
        readonly responseStream: false;
        readonly requestSerialize: (value: GetQuotaRequest) => Buffer;
        readonly requestDeserialize: (value: Buffer) => GetQuotaRequest;
        readonly responseSerialize: (value: GetQuotaResponse) => Buffer;
        readonly responseDeserialize: (value: Buffer) => GetQuotaResponse;
    };
    /** Admin: add units to the balance (a ledger entry records who and why). */
    readonly grantQuota: {
        readonly path: "/modx.v1.SystemService/GrantQuota";
        readonly requestStream: false;
        readonly responseStream: false;
        readonly requestSerialize: (value: GrantQuotaRequest) => Buffer;
        readonly requestDeserialize: (value: Buffer) => GrantQuotaRequest;
        readonly responseSerialize: (value: GrantQuotaResponse) => Buffer;
        readonly responseDeserialize: (value: Buffer) => GrantQuotaResponse;
    };
};
export interface SystemServiceServer extends UntypedServiceImplementation {
    getStatus: handleUnaryCall<GetStatusRequest, GetStatusResponse>;
    getEnvironment: handleUnaryCall<GetEnvironmentRequest, GetEnvironmentResponse>;
    /** The VRAM guidance of the seed checked against the detected devices. */
    getHardwareAdvice: handleUnaryCall<GetHardwareAdviceRequest, GetHardwareAdviceResponse>;
    getQuota: handleUnaryCall<GetQuotaRequest, GetQuotaResponse>;
    /** Admin: add units to the balance (a ledger entry records who and why). */
    grantQuota: handleUnaryCall<GrantQuotaRequest, GrantQuotaResponse>;
}
export interface SystemServiceClient extends Client {
    getStatus(request: GetStatusRequest, callback: (error: ServiceError | null, response: GetStatusResponse) => void): ClientUnaryCall;
    getStatus(request: GetStatusRequest, metadata: Metadata, callback: (error: ServiceError | null, response: GetStatusResponse) => void): ClientUnaryCall;
    getStatus(request: GetStatusRequest, metadata: Metadata, options: Partial<CallOptions>, callback: (error: ServiceError | null, response: GetStatusResponse) => void): ClientUnaryCall;
    getEnvironment(request: GetEnvironmentRequest, callback: (error: ServiceError | null, response: GetEnvironmentResponse) => void): ClientUnaryCall;
    getEnvironment(request: GetEnvironmentRequest, metadata: Metadata, callback: (error: ServiceError | null, response: GetEnvironmentResponse) => void): ClientUnaryCall;
    getEnvironment(request: GetEnvironmentRequest, metadata: Metadata, options: Partial<CallOptions>, callback: (error: ServiceError | null, response: GetEnvironmentResponse) => void): ClientUnaryCall;
    /** The VRAM guidance of the seed checked against the detected devices. */
    getHardwareAdvice(request: GetHardwareAdviceRequest, callback: (error: ServiceError | null, response: GetHardwareAdviceResponse) => void): ClientUnaryCall;
    getHardwareAdvice(request: GetHardwareAdviceRequest, metadata: Metadata, callback: (error: ServiceError | null, response: GetHardwareAdviceResponse) => void): ClientUnaryCall;
    getHardwareAdvice(request: GetHardwareAdviceRequest, metadata: Metadata, options: Partial<CallOptions>, callback: (error: ServiceError | null, response: GetHardwareAdviceResponse) => void): ClientUnaryCall;
    getQuota(request: GetQuotaRequest, callback: (error: ServiceError | null, response: GetQuotaResponse) => void): ClientUnaryCall;
    getQuota(request: GetQuotaRequest, metadata: Metadata, callback: (error: ServiceError | null, response: GetQuotaResponse) => void): ClientUnaryCall;
    getQuota(request: GetQuotaRequest, metadata: Metadata, options: Partial<CallOptions>, callback: (error: ServiceError | null, response: GetQuotaResponse) => void): ClientUnaryCall;
    /** Admin: add units to the balance (a ledger entry records who and why). */
    grantQuota(request: GrantQuotaRequest, callback: (error: ServiceError | null, response: GrantQuotaResponse) => void): ClientUnaryCall;
    grantQuota(request: GrantQuotaRequest, metadata: Metadata, callback: (error: ServiceError | null, response: GrantQuotaResponse) => void): ClientUnaryCall;
    grantQuota(request: GrantQuotaRequest, metadata: Metadata, options: Partial<CallOptions>, callback: (error: ServiceError | null, response: GrantQuotaResponse) => void): ClientUnaryCall;
}
export declare const SystemServiceClient: {
    new (address: string, credentials: ChannelCredentials, options?: Partial<ClientOptions>): SystemServiceClient;
    service: typeof SystemServiceService;
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
