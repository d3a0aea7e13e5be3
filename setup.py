"""Builds libmodgap with CMake (the same CMakeLists.txt C++ users build) and ships it inside the
`modgap` Python package as modgap/lib/libmodgap.so. Thin on purpose: no Python extension module,
the library is loaded with torch.ops.load_library.

Environment: MODGAP_BUILD_DIR (default build/cmake), MODGAP_USE_CUDA (ON/OFF), TORCH_CUDA_ARCH_LIST,
MAX_JOBS.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeLibrary(Extension):
    NAME = "modgap.lib.libmodgap"

    def __init__(self) -> None:
        super().__init__(self.NAME, sources=[])


def configured_torch_dir(build_dir: Path):
    """The Torch_DIR an existing CMake build directory was configured with (None: not configured)."""
    cache = build_dir / "CMakeCache.txt"
    if not cache.exists():
        return None
    for line in cache.read_text(errors="replace").splitlines():
        if line.startswith("Torch_DIR:"):
            return Path(line.split("=", 1)[1]).resolve()
    return None


class BuildLibmodgap(build_ext):
    def get_ext_filename(self, fullname: str) -> str:
        # The library is loaded by path (torch.ops.load_library), not imported: its file is libmodgap.so,
        # the name setuptools also copies for an editable install (`pip install -e`).
        # (distutils asks for the last component, "libmodgap"; setuptools' editable copy for the full name.)
        parts = fullname.split(".")
        if parts[-1] == CMakeLibrary.NAME.split(".")[-1]:
            return os.path.join(*parts[:-1], "libmodgap.so")
        return super().get_ext_filename(fullname)

    def copy_extensions_to_source(self) -> None:
        # `pip install -e .`: the package is the source tree (python/modgap), so the library, its SONAME
        # copy, its build info and the CLI go there (git ignores python/modgap/lib and bin).
        package_dir = Path(self.get_finalized_command("build_py").get_package_dir("modgap"))
        for relative in ("lib/libmodgap.so", "lib/libmodgap.so.0", "lib/libmodgap.build.json", "bin/modgap"):
            destination = package_dir / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(self.build_lib) / "modgap" / relative, destination)

    def build_extension(self, ext: Extension) -> None:
        try:
            import torch
        except ImportError:
            raise RuntimeError(
                "modgap is compiled against the torch of the environment that will load it, and this build "
                "environment has none (pip's build isolation). Install torch first, then "
                "`pip install --no-build-isolation .`") from None

        build_dir = Path(os.environ.get("MODGAP_BUILD_DIR", ROOT / "build" / "cmake")).resolve()
        cmake = shutil.which("cmake", path=str(Path(sys.executable).parent)) or shutil.which("cmake")
        if cmake is None:
            raise RuntimeError("cmake was not found; `pip install cmake ninja` first")
        # A build directory configured for another environment's torch would be rebuilt against that torch
        # and the library would fail to load here (undefined symbols): refuse, saying what to do.
        torch_dir = (Path(torch.utils.cmake_prefix_path) / "Torch").resolve()
        configured = configured_torch_dir(build_dir)
        if configured is not None and configured != torch_dir:
            raise RuntimeError(
                f"{build_dir} was configured for the torch at {configured}, but this environment's torch is at "
                f"{torch_dir}: use a build directory per environment (MODGAP_BUILD_DIR=build/cmake-<name>) "
                f"or remove {build_dir}")
        if not (build_dir / "CMakeCache.txt").exists():
            args = [cmake, "-S", str(ROOT), "-B", str(build_dir),
                    f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}", "-DCMAKE_BUILD_TYPE=Release"]
            if shutil.which("ninja", path=str(Path(sys.executable).parent)) or shutil.which("ninja"):
                args += ["-G", "Ninja"]
            if "MODGAP_USE_CUDA" in os.environ:
                args.append(f"-DMODGAP_USE_CUDA={os.environ['MODGAP_USE_CUDA']}")
            if "TORCH_CUDA_ARCH_LIST" in os.environ:
                args.append(f"-DTORCH_CUDA_ARCH_LIST={os.environ['TORCH_CUDA_ARCH_LIST']}")
            subprocess.check_call(args)
        jobs = os.environ.get("MAX_JOBS", str(os.cpu_count() or 1))
        subprocess.check_call([cmake, "--build", str(build_dir), "--target", "modgap", "modgap_cli", "-j", jobs])
        built = (build_dir / "libmodgap.so").resolve()
        target = Path(self.get_ext_fullpath(ext.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built, target)
        # The `modgap` CLI (C++) in modgap/bin/: its RPATH includes $ORIGIN/../lib, where the dynamic
        # loader looks for the library's SONAME (libmodgap.so.0), so that name is shipped too (1 MB).
        shutil.copyfile(built, target.with_name("libmodgap.so.0"))
        # the torch it was built against, for the loader's error message (CMakeLists.txt writes it)
        shutil.copyfile(build_dir / "libmodgap.build.json", target.with_name("libmodgap.build.json"))
        cli = target.parent.parent / "bin" / "modgap"
        cli.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(build_dir / "modgap", cli)
        cli.chmod(0o755)


setup(ext_modules=[CMakeLibrary()], cmdclass={"build_ext": BuildLibmodgap})
