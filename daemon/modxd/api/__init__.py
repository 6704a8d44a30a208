"""gRPC servicers: translate protobuf <-> domain calls, nothing else."""
