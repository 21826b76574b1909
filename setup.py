"""Builds graphplat._core (cpp/, pybind11; its own thread pool) and the gRPC stubs from proto/."""
import glob
import os
import re
import subprocess
import sys

from pybind11.setup_helpers import ParallelCompile, Pybind11Extension, build_ext
from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = os.path.dirname(os.path.abspath(__file__))
ParallelCompile("GRAPHPLAT_BUILD_JOBS", default=2).install()


def generate_grpc_stubs():
    """Compile proto/*.proto into graphplat/proto/ (python and grpc stubs)."""
    protos = sorted(glob.glob(os.path.join(ROOT, "proto", "*.proto")))
    if not protos:
        return
    out = os.path.join(ROOT, "graphplat", "proto")
    os.makedirs(out, exist_ok=True)
    open(os.path.join(out, "__init__.py"), "a").close()
    try:
        from grpc_tools import protoc  # noqa: F401  (build requirement)
    except ImportError as exc:  # pragma: no cover - build env always has it
        raise SystemExit("grpcio-tools is required to build graphplat (pip install grpcio-tools)") from exc
    cmd = [sys.executable, "-m", "grpc_tools.protoc", f"-I{os.path.join(ROOT, 'proto')}",
           f"--python_out={out}", f"--grpc_python_out={out}", f"--pyi_out={out}", *protos]
    subprocess.check_call(cmd)
    # protoc emits absolute imports between the generated modules ("import common_pb2 as
    # common__pb2" in graphplat_pb2.py and in the grpc stubs, "from common_pb2 import ..." and
    # "import common_pb2 as _common_pb2" in the .pyi files); make them package-relative.
    mods = [os.path.splitext(os.path.basename(proto))[0] + "_pb2" for proto in protos]
    for path in (glob.glob(os.path.join(out, "*_pb2.py")) + glob.glob(os.path.join(out, "*_pb2_grpc.py"))
                 + glob.glob(os.path.join(out, "*_pb2.pyi"))):
        with open(path) as f:
            text = f.read()
        for mod in mods:
            text = re.sub(rf"^import {mod} as", f"from . import {mod} as", text, flags=re.M)
            text = re.sub(rf"^from {mod} import", f"from .{mod} import", text, flags=re.M)
        with open(path, "w") as f:
            f.write(text)


class BuildPy(build_py):
    def run(self):
        generate_grpc_stubs()
        super().run()


class BuildExt(build_ext):
    def run(self):
        generate_grpc_stubs()  # editable installs skip build_py
        super().run()


ext = Pybind11Extension(
    "graphplat._core",
    sorted(glob.glob("cpp/src/*.cc")) + sorted(glob.glob("cpp/bindings/*.cc")),
    include_dirs=["cpp/include"],
    cxx_std=17,
    extra_compile_args=["-O3", "-fvisibility=hidden", "-Wall", "-Wno-sign-compare"],
    extra_link_args=["-pthread"],
)

setup(ext_modules=[ext], cmdclass={"build_ext": BuildExt, "build_py": BuildPy})
