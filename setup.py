"""setuptools shim: metadata lives in setup.cfg; this adds the kernelspecs as Jupyter data files."""
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).parent


def kernelspec_data_files() -> list[tuple[str, list[str]]]:
    """Ship every kernelspecs/<name>/ as share/jupyter/kernels/<name>/ (the Jupyter way)."""
    entries = []
    for spec_dir in sorted((HERE / "kernelspecs").iterdir()):
        if (spec_dir / "kernel.json").is_file():
            files = [str(p.relative_to(HERE)) for p in sorted(spec_dir.iterdir()) if p.is_file()]
            entries.append((f"share/jupyter/kernels/{spec_dir.name}", files))
    return entries


setup(data_files=kernelspec_data_files())
