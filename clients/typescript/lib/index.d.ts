export * as common from "./gen/modx/v1/common";
export * as training from "./gen/modx/v1/training";
export * as evaluation from "./gen/modx/v1/eval";
export * as inference from "./gen/modx/v1/inference";
export * as packaging from "./gen/modx/v1/package";
export * as system from "./gen/modx/v1/system";
export * as timestamp from "./gen/google/protobuf/timestamp";
