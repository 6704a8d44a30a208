import { BinaryReader, BinaryWriter } from "@bufbuild/protobuf/wire";
import { type CallOptions, type ChannelCredentials, Client, type ClientOptions, type ClientReadableStream, type ClientUnaryCall, type handleServerStreamingCall, type handleUnaryCall, type Metadata, type ServiceError, type UntypedServiceImplementation } from "@grpc/grpc-js";
import { Timestamp } from "../../google/protobuf/timestamp";
import { FileChunk, JobState, LogLine, PageRequest } from "./common";
export declare const protobufPackage = "modx.v1";
export declare const protobufFileName = "modx/v1/package.proto";
export declare enum QuantType {
    QUANT_TYPE_UNSPECIFIED = 0,
    QUANT_TYPE_F32 = 1,
    QUANT_TYPE_F16 = 2,
    QUANT_TYPE_BF16 = 3,
    QUANT_TYPE_Q8_0 = 4,
    QUANT_TYPE_Q2_K = 5,
    QUANT_TYPE_Q3_K_S = 6,
    QUANT_TYPE_Q3_K_M = 7,
    QUANT_TYPE_Q3_K_L = 8,
    QUANT_TYPE_Q4_0 = 9,
    QUANT_TYPE_Q4_K_S = 10,
    QUANT_TYPE_Q4_K_M = 11,
    QUANT_TYPE_Q5_0 = 12,
    QUANT_TYPE_Q5_K_S = 13,
    QUANT_TYPE_Q5_K_M = 14,
    QUANT_TYPE_Q6_K = 15,
    UNRECOGNIZED = -1
}
export declare function quantTypeFromJSON(object: any): QuantType;
export declare function quantTypeToJSON(object: QuantType): string;
export interface PackageFile {
    /**
     * On the daemon's host, in the package's output_dir; any client downloads it
     * with ReadPackageFile (this path, or its file name).
     */
    path: string;
    /**
     * model (a .gguf), adapter (a LoRA .gguf for an unmerged package), modelfile
     * (for Ollama), model_card (README.md)
     */
    kind: string;
    /** Of a model file (UNSPECIFIED for the others). */
    quantType: QuantType;
    sizeBytes: string;
    /** Lowercase hex SHA-256 of the file. */
    sha256: string;
}
/** The GGUF file run through llama.cpp against the source model in transformers. */
export interface Verification {
    /** Both tokenize the probe prompts to the same ids. */
    tokenizerMatch: boolean;
    /** 0 to 1: the share of prompts whose most likely next token is the same. */
    top1Agreement: number;
    /** Absolute differences of the two's logits at the compared positions: largest and mean. */
    maxLogitDiff: number;
    meanLogitDiff: number;
    /** How many probe prompts. */
    prompts: number;
    quantType: QuantType;
}
export interface Package {
    id: string;
    taskId: string;
    /** The checkpoint packaged: an id, "merged", or "base" (the task's base model). */
    checkpointId: string;
    state: JobState;
    /** Why it failed or was cancelled (empty otherwise). */
    stateReason: string;
    quantTypes: QuantType[];
    merge: boolean;
    outputDir: string;
    files: PackageFile[];
    verifications: Verification[];
    createTime: Timestamp | undefined;
    endTime: Timestamp | undefined;
}
export interface PackageProgress {
    /** convert, quantize, verify, ... (tensors_* count within the phase). */
    phase: string;
    tensorsDone: string;
    tensorsTotal: string;
    bytesWritten: string;
    quantType: QuantType;
}
export interface PackageEvent {
    packageId: string;
    seq: string;
    time: Timestamp | undefined;
    payload: {
        $case: "state";
        state: JobState;
    } | {
        $case: "progress";
        progress: PackageProgress;
    } | {
        $case: "log";
        log: LogLine;
    } | {
        $case: "file";
        file: PackageFile;
    } | undefined;
}
export interface CreatePackageRequest {
    taskId: string;
    /**
     * Checkpoint id, step or path; "merged" (what merge_lora_after_training wrote);
     * or "base": the task's base model as it is, a baseline to compare the
     * fine-tuned GGUF with (an evaluation's best_checkpoint_id may be "base").
     */
    checkpoint: string;
    /** At least one; each becomes one model file. */
    quantTypes: QuantType[];
    /**
     * Merge a LoRA adapter into the base weights before converting (default true);
     * false writes the base model and the adapter as two GGUF files.
     */
    merge?: boolean | undefined;
    /** Default: <task output dir>/packages/<package id>. */
    outputDir: string;
    /** Skip the llama.cpp-versus-transformers check (Package.verifications stays empty). */
    skipVerification: boolean;
}
export interface CreatePackageResponse {
    package: Package | undefined;
}
export interface GetPackageRequest {
    packageId: string;
}
export interface GetPackageResponse {
    package: Package | undefined;
}
export interface ListPackagesRequest {
    taskId: string;
    page: PageRequest | undefined;
}
export interface ListPackagesResponse {
    packages: Package[];
    nextPageToken: string;
}
export interface WatchPackageRequest {
    packageId: string;
    /** Replay events with seq > after_seq (0 = from the beginning), then follow. */
    afterSeq: string;
}
export interface WatchPackageResponse {
    event: PackageEvent | undefined;
}
export interface ImportGgufRequest {
    ggufPath: string;
    outputDir: string;
    /** Replace an existing output dir. */
    overwrite: boolean;
}
export interface ImportGgufResponse {
    outputDir: string;
    /** The GGUF's general.architecture ("llama", "qwen2", …). */
    architecture: string;
    /** Parameter count of the model. */
    parameters: string;
    /** True when the output dir already held this import and was kept. */
    cached: boolean;
}
export interface ReadPackageFileRequest {
    packageId: string;
    /** One of the package's files: its PackageFile.path, or the file name alone. */
    path: string;
    /** Start at this byte (resume an interrupted download); 0 to the file's size. */
    offset: string;
}
export interface ReadPackageFileResponse {
    chunk: FileChunk | undefined;
}
export declare const PackageFile: MessageFns<PackageFile>;
export declare const Verification: MessageFns<Verification>;
export declare const Package: MessageFns<Package>;
export declare const PackageProgress: MessageFns<PackageProgress>;
export declare const PackageEvent: MessageFns<PackageEvent>;
export declare const CreatePackageRequest: MessageFns<CreatePackageRequest>;
export declare const CreatePackageResponse: MessageFns<CreatePackageResponse>;
export declare const GetPackageRequest: MessageFns<GetPackageRequest>;
export declare const GetPackageResponse: MessageFns<GetPackageResponse>;
export declare const ListPackagesRequest: MessageFns<ListPackagesRequest>;
export declare const ListPackagesResponse: MessageFns<ListPackagesResponse>;
export declare const WatchPackageRequest: MessageFns<WatchPackageRequest>;
export declare const WatchPackageResponse: MessageFns<WatchPackageResponse>;
export declare const ImportGgufRequest: MessageFns<ImportGgufRequest>;
export declare const ImportGgufResponse: MessageFns<ImportGgufResponse>;
export declare const ReadPackageFileRequest: MessageFns<ReadPackageFileRequest>;
export declare const ReadPackageFileResponse: MessageFns<ReadPackageFileResponse>;
/**
 * PackageService exports checkpoints as GGUF files for llama.cpp and imports
 * GGUF models as trainable Hugging Face dirs.
 */
export type PackageServiceService = typeof PackageServiceService;
export declare const PackageServiceService: {
    readonly createPackage: {
        readonly path: "/modx.v1.PackageService/CreatePackage";
        readonly requestStream: false;
        readonly responseStream: false;
        readonly requestSerialize: (value: CreatePackageRequest) => Buffer;
        readonly requestDeserialize: (value: Buffer) => CreatePackageRequest;
        readonly responseSerialize: (value: CreatePackageResponse) => Buffer;
        readonly responseDeserialize: (value: Buffer) => CreatePackageResponse;
    };
    readonly getPackage: {
        readonly path: "/modx.v1.PackageService/GetPackage";
        readonly requestStream: false;
        readonly responseStream: false;
        readonly requestSerialize: (value: GetPackageRequest) => Buffer;
        readonly requestDeserialize: (value: Buffer) => GetPackageRequest;
        readonly responseSerialize: (value: GetPackageResponse) => Buffer;
        readonly responseDeserialize: (value: Buffer) => GetPackageResponse;
    };
    readonly listPackages: {
        readonly path: "/modx.v1.PackageService/ListPackages";
        readonly requestStream: false;
        readonly responseStream: false;
        readonly requestSerialize: (value: ListPackagesRequest) => Buffer;
        readonly requestDeserialize: (value: Buffer) => ListPackagesRequest;
        readonly responseSerialize: (value: ListPackagesResponse) => Buffer;
        readonly responseDeserialize: (value: Buffer) => ListPackagesResponse;
    };
    readonly watchPackage: {
        readonly path: "/modx.v1.PackageService/WatchPackage";
        readonly requestStream: false;
        readonly responseStream: true;
        readonly requestSerialize: (value: WatchPackageRequest) => Buffer;
        readonly requestDeserialize: (value: Buffer) => WatchPackageRequest;
        readonly responseSerialize: (value: WatchPackageResponse) => Buffer;
        readonly responseDeserialize: (value: Buffer) => WatchPackageResponse;
    };
    /** Turn a GGUF file into a trainable Hugging Face model dir (dequantized). */
    readonly importGguf: {
        readonly path: "/modx.v1.PackageService/ImportGguf";
        readonly requestStream: false;
        readonly responseStream: false;
        readonly requestSerialize: (value: ImportGgufRequest) => Buffer;
        readonly requestDeserialize: (value: Buffer) => ImportGgufRequest;
        readonly responseSerialize: (value: ImportGgufResponse) => Buffer;
        readonly responseDeserialize: (value: Buffer) => ImportGgufResponse;
    };
    /**
     * Download one of a completed package's files (Package.files) in chunks;
     * FileChunk says where the SHA-256 is (it matches PackageFile.sha256).
     */
    readonly readPackageFile: {
        readonly path: "/modx.v1.PackageService/ReadPackageFile";
        readonly requestStream: false;
        readonly responseStream: true;
        readonly requestSerialize: (value: ReadPackageFileRequest) => Buffer;
        readonly requestDeserialize: (value: Buffer) => ReadPackageFileRequest;
        readonly responseSerialize: (value: ReadPackageFileResponse) => Buffer;
        readonly responseDeserialize: (value: Buffer) => ReadPackageFileResponse;
    };
};
export interface PackageServiceServer extends UntypedServiceImplementation {
    createPackage: handleUnaryCall<CreatePackageRequest, CreatePackageResponse>;
    getPackage: handleUnaryCall<GetPackageRequest, GetPackageResponse>;
    listPackages: handleUnaryCall<ListPackagesRequest, ListPackagesResponse>;
    watchPackage: handleServerStreamingCall<WatchPackageRequest, WatchPackageResponse>;
    /** Turn a GGUF file into a trainable Hugging Face model dir (dequantized). */
    importGguf: handleUnaryCall<ImportGgufRequest, ImportGgufResponse>;
    /**
     * Download one of a completed package's files (Package.files) in chunks;
     * FileChunk says where the SHA-256 is (it matches PackageFile.sha256).
     */
    readPackageFile: handleServerStreamingCall<ReadPackageFileRequest, ReadPackageFileResponse>;
}
export interface PackageServiceClient extends Client {
    createPackage(request: CreatePackageRequest, callback: (error: ServiceError | null, response: CreatePackageResponse) => void): ClientUnaryCall;
    createPackage(request: CreatePackageRequest, metadata: Metadata, callback: (error: ServiceError | null, response: CreatePackageResponse) => void): ClientUnaryCall;
    createPackage(request: CreatePackageRequest, metadata: Metadata, options: Partial<CallOptions>, callback: (error: ServiceError | null, response: CreatePackageResponse) => void): ClientUnaryCall;
    getPackage(request: GetPackageRequest, callback: (error: ServiceError | null, response: GetPackageResponse) => void): ClientUnaryCall;
    getPackage(request: GetPackageRequest, metadata: Metadata, callback: (error: ServiceError | null, response: GetPackageResponse) => void): ClientUnaryCall;
    getPackage(request: GetPackageRequest, metadata: Metadata, options: Partial<CallOptions>, callback: (error: ServiceError | null, response: GetPackageResponse) => void): ClientUnaryCall;
    listPackages(request: ListPackagesRequest, callback: (error: ServiceError | null, response: ListPackagesResponse) => void): ClientUnaryCall;
    listPackages(request: ListPackagesRequest, metadata: Metadata, callback: (error: ServiceError | null, response: ListPackagesResponse) => void): ClientUnaryCall;
    listPackages(request: ListPackagesRequest, metadata: Metadata, options: Partial<CallOptions>, callback: (error: ServiceError | null, response: ListPackagesResponse) => void): ClientUnaryCall;
    watchPackage(request: WatchPackageRequest, options?: Partial<CallOptions>): ClientReadableStream<WatchPackageResponse>;
    watchPackage(request: WatchPackageRequest, metadata?: Metadata, options?: Partial<CallOptions>): ClientReadableStream<WatchPackageResponse>;
    /** Turn a GGUF file into a trainable Hugging Face model dir (dequantized). */
    importGguf(request: ImportGgufRequest, callback: (error: ServiceError | null, response: ImportGgufResponse) => void): ClientUnaryCall;
    importGguf(request: ImportGgufRequest, metadata: Metadata, callback: (error: ServiceError | null, response: ImportGgufResponse) => void): ClientUnaryCall;
    importGguf(request: ImportGgufRequest, metadata: Metadata, options: Partial<CallOptions>, callback: (error: ServiceError | null, response: ImportGgufResponse) => void): ClientUnaryCall;
    /**
     * Download one of a completed package's files (Package.files) in chunks;
     * FileChunk says where the SHA-256 is (it matches PackageFile.sha256).
     */
    readPackageFile(request: ReadPackageFileRequest, options?: Partial<CallOptions>): ClientReadableStream<ReadPackageFileResponse>;
    readPackageFile(request: ReadPackageFileRequest, metadata?: Metadata, options?: Partial<CallOptions>): ClientReadableStream<ReadPackageFileResponse>;
}
export declare const PackageServiceClient: {
    new (address: string, credentials: ChannelCredentials, options?: Partial<ClientOptions>): PackageServiceClient;
    service: typeof PackageServiceService;
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
