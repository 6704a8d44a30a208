"""Generated gRPC stubs of the modx.v1 API (see protos/)."""
