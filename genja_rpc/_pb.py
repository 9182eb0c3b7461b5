"""The generated protobuf modules under short names (the only importer of _generated)."""

from genja_rpc._generated.genja.v1 import genja_pb2 as pb
from genja_rpc._generated.genja.v1 import genja_pb2_grpc as pb_grpc

# The version of the wire contract (protos/genja/v1) this code speaks. Raise it with any change
# an older peer would misread; agents and coordinators of different versions refuse each other.
PROTOCOL_VERSION = 5

__all__ = ["PROTOCOL_VERSION", "pb", "pb_grpc"]
