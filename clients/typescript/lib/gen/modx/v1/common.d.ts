import { BinaryReader, BinaryWriter } from "@bufbuild/protobuf/wire";
import { Timestamp } from "../../google/protobuf/timestamp";
export declare const protobufPackage = "modx.v1";
export declare const protobufFileName = "modx/v1/common.proto";
/** The kind of training a task performs. */
export declare enum TaskType {
    TASK_TYPE_UNSPECIFIED = 0,
    /** TASK_TYPE_SFT - Supervised fine-tuning on conversations (LoRA by default). */
    TASK_TYPE_SFT = 1,
    /** TASK_TYPE_PRETRAIN - Continued pretraining on plain text (full fine-tuning by default). */
    TASK_TYPE_PRETRAIN = 2,
    /**
     * TASK_TYPE_DPO - Preference tuning on pairs of answers (TRL's DPOTrainer; LoRA by default): the chosen answer
     * made more likely than the rejected one, relative to the start point (docs/preference.md).
     */
    TASK_TYPE_DPO = 3,
    /**
     * TASK_TYPE_ORPO - Preference tuning without a reference model (TRL's ORPOTrainer): SFT on the chosen answer plus
     * an odds-ratio term against the rejected one.
     */
    TASK_TYPE_ORPO = 4,
    UNRECOGNIZED = -1
}
export declare function taskTypeFromJSON(object: any): TaskType;
export declare function taskTypeToJSON(object: TaskType): string;
/**
 * The lifecycle of a task. COMPLETED, STOPPED and FAILED are terminal: only an
 * explicit resume (which is recorded) moves a task out of STOPPED or FAILED.
 */
export declare enum TaskState {
    TASK_STATE_UNSPECIFIED = 0,
    /** TASK_STATE_CREATED - created, never queued */
    TASK_STATE_CREATED = 1,
    /** TASK_STATE_PENDING - queued, waiting for a device */
    TASK_STATE_PENDING = 2,
    TASK_STATE_RUNNING = 3,
    /** TASK_STATE_STOPPING - stop requested; the worker finishes its step and saves */
    TASK_STATE_STOPPING = 4,
    TASK_STATE_STOPPED = 5,
    TASK_STATE_COMPLETED = 6,
    TASK_STATE_FAILED = 7,
    UNRECOGNIZED = -1
}
export declare function taskStateFromJSON(object: any): TaskState;
export declare function taskStateToJSON(object: TaskState): string;
/** State of a background job that is not a training task (evaluation, package). */
export declare enum JobState {
    JOB_STATE_UNSPECIFIED = 0,
    JOB_STATE_PENDING = 1,
    JOB_STATE_RUNNING = 2,
    JOB_STATE_COMPLETED = 3,
    JOB_STATE_FAILED = 4,
    JOB_STATE_CANCELLED = 5,
    UNRECOGNIZED = -1
}
export declare function jobStateFromJSON(object: any): JobState;
export declare function jobStateToJSON(object: JobState): string;
/**
 * A typed parameter value. Clients may always send `string_value`; the daemon
 * converts it with the parameter schema (GetParamSchema), so "32" for lora_r works.
 */
export interface ParamValue {
    kind: {
        $case: "boolValue";
        boolValue: boolean;
    } | {
        $case: "intValue";
        intValue: string;
    } | {
        $case: "doubleValue";
        doubleValue: number;
    } | {
        $case: "stringValue";
        stringValue: string;
    } | {
        $case: "listValue";
        listValue: StringList;
    } | undefined;
}
export interface StringList {
    values: string[];
}
/** Pagination: `page_token` is opaque; an empty `next_page_token` means the end. */
export interface PageRequest {
    /** 0 = the RPC's default (50; ListMetrics 1000); at most 1000 (ListMetrics 10000). */
    pageSize: number;
    /** The previous response's next_page_token; empty = the first page. */
    pageToken: string;
}
/**
 * A warning that does not stop the request (quota estimate too large, a
 * precision fallback, ...). `code` is stable, `message` is for people.
 */
export interface Warning {
    code: string;
    message: string;
}
/** A line of the task's (or job's) log. */
export interface LogLine {
    time: Timestamp | undefined;
    /** debug, info, warning or error. */
    level: string;
    message: string;
}
/**
 * A piece of a file served by a Read*File RPC (PackageService.ReadPackageFile,
 * EvalService.ReadEvaluationFile). Chunks come in file order, each with at most
 * 1 MiB (1048576 bytes) of data; the stream ends after the chunk that carries sha256.
 */
export interface FileChunk {
    data: Buffer;
    /** Where `data` starts in the file: the request's `offset` for the first chunk. */
    offset: string;
    /** The size of the whole file, in every chunk. */
    sizeBytes: string;
    /**
     * Lowercase hex SHA-256 of the whole file from byte 0, also when the request
     * started at an offset (a client that resumes hashes the bytes it already has,
     * then the rest). Set in the LAST chunk only; empty in the others. A file read
     * from `offset` = its size answers one chunk without data that carries it.
     */
    sha256: string;
}
export declare const ParamValue: MessageFns<ParamValue>;
export declare const StringList: MessageFns<StringList>;
export declare const PageRequest: MessageFns<PageRequest>;
export declare const Warning: MessageFns<Warning>;
export declare const LogLine: MessageFns<LogLine>;
export declare const FileChunk: MessageFns<FileChunk>;
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
