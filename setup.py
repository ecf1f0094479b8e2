"""Builds the qaexchange extension with the project's CMake (no sanitizers, -O2).

    /usr/bin/python3 -m venv --system-site-packages .venv
    .venv/bin/pip install --no-build-isolation --no-index .

CMake's build directory is build/python (QX_PY_BUILD_DIR overrides it), so reinstalling is
incremental. Only the extension target and what it links are built.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        build_dir = Path(os.environ.get("QX_PY_BUILD_DIR", ROOT / "build" / "python"))
        build_dir.mkdir(parents=True, exist_ok=True)
        jobs = os.environ.get("QX_PY_JOBS", str(os.cpu_count() or 2))
        subprocess.run([
            "cmake", "-S", str(ROOT), "-B", str(build_dir), "-G", "Ninja",
            "-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_CXX_FLAGS_RELEASE=-O2",
            "-DQX_BUILD_PYTHON=ON", "-DQX_BUILD_TESTS=OFF", "-DQX_BUILD_BENCH=OFF",
            f"-DPython_EXECUTABLE={sys.executable}",
        ], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["cmake", "--build", str(build_dir), "--target", "_qaexchange",
                        "-j", jobs], check=True)
        built = next((build_dir / "python").glob("_qaexchange*.so"))
        target = Path(self.get_ext_fullpath(ext.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built, target)


setup(ext_modules=[Extension("qaexchange._qaexchange", sources=[])],
      cmdclass={"build_ext": CMakeBuild})
