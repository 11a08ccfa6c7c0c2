"""Data derived from pinned dependencies, computed once and shipped in data/, because deriving it on
every run cost more than checking the file:

- the Azure Pipelines schema as azure_schema.py adapts it (117 KB), instead of reading
  check-jsonschema's vendored 1.6 MB file and adapting it (~15 ms);
- the file descriptor of google.devtools.cloudbuild.v1 (Build, BuildTrigger) as google-cloud-build's
  proto-plus module generates it, instead of importing that module (~40 ms of class creation).

`python -m mlops_gen.validate.precomputed` rewrites both after a dependency or azure_schema.py
changes; tests/validate/test_fast_paths.py fails while either is out of date.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import types
from importlib.resources import files
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
AZURE_SCHEMA = "azure-pipelines.adapted.json"
CLOUDBUILD_DESCRIPTOR = "cloudbuild-v1.descriptor.pb"
_GCB = "google.cloud.devtools.cloudbuild_v1"


def read_data(name: str) -> bytes:
    return files("mlops_gen.validate").joinpath(f"data/{name}").read_bytes()


def azure_schema_text() -> str:
    from mlops_gen.validate.azure_schema import build_adapted_schema

    return json.dumps(build_adapted_schema(), indent=1, ensure_ascii=False) + "\n"


def cloudbuild_descriptor_bytes() -> bytes:
    from google.protobuf import descriptor_pb2

    proto = descriptor_pb2.FileDescriptorProto()
    proto_plus_messages().Build.pb().DESCRIPTOR.file.CopyToProto(proto)
    return proto.SerializeToString(deterministic=True)


def proto_plus_messages() -> types.ModuleType:
    """google-cloud-build's messages module, imported without the package's `__init__` (the gRPC and REST
    clients, google-auth, the retry machinery): the types module is imported under a placeholder of its
    package, which is then dropped, so that a later `import cloudbuild_v1` is the real one."""
    name = f"{_GCB}.types.cloudbuild"
    if _GCB in sys.modules:
        return importlib.import_module(name)
    spec = importlib.util.find_spec(_GCB)
    placeholder = types.ModuleType(_GCB)
    placeholder.__path__, placeholder.__spec__ = list(spec.submodule_search_locations), spec
    sys.modules[_GCB] = placeholder
    try:
        return importlib.import_module(name)
    finally:
        if sys.modules.get(_GCB) is placeholder:
            del sys.modules[_GCB]


def write() -> None:
    (DATA / AZURE_SCHEMA).write_text(azure_schema_text(), encoding="utf-8")
    (DATA / CLOUDBUILD_DESCRIPTOR).write_bytes(cloudbuild_descriptor_bytes())


if __name__ == "__main__":
    write()
