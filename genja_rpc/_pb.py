"""The generated protobuf modules under short names (the only importer of _generated)."""

from genja_rpc._generated.genja.v1 import genja_pb2 as pb
from genja_rpc._generated.genja.v1 import genja_pb2_grpc as pb_grpc

__all__ = ["pb", "pb_grpc"]
