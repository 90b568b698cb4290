// The generated braid.v1 messages and grpc-js clients, one namespace per proto file.

export * as admin from "./gen/braid/v1/admin";
export * as common from "./gen/braid/v1/common";
export * as run from "./gen/braid/v1/run";
export * as schedule from "./gen/braid/v1/schedule";
export * as worker from "./gen/braid/v1/worker";
export * as workflow from "./gen/braid/v1/workflow";
