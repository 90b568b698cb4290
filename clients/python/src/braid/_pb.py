"""Short names for the generated braid.v1 modules."""

from braid._gen.braid.v1 import admin_pb2 as admin
from braid._gen.braid.v1 import admin_pb2_grpc as admin_grpc
from braid._gen.braid.v1 import common_pb2 as common
from braid._gen.braid.v1 import run_pb2 as run
from braid._gen.braid.v1 import run_pb2_grpc as run_grpc
from braid._gen.braid.v1 import schedule_pb2 as schedule
from braid._gen.braid.v1 import schedule_pb2_grpc as schedule_grpc
from braid._gen.braid.v1 import worker_pb2 as worker
from braid._gen.braid.v1 import worker_pb2_grpc as worker_grpc
from braid._gen.braid.v1 import workflow_pb2 as workflow
from braid._gen.braid.v1 import workflow_pb2_grpc as workflow_grpc

__all__ = [
    "admin",
    "admin_grpc",
    "common",
    "run",
    "run_grpc",
    "schedule",
    "schedule_grpc",
    "worker",
    "worker_grpc",
    "workflow",
    "workflow_grpc",
]
