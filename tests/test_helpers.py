"""ai.backend.helpers.install with a real pip, a locally built wheel and an isolated user site."""
from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ai.backend.helpers import install

REPO = Path(__file__).resolve().parents[1]


def make_wheel(directory: Path, name: str = "krtesthelper", version: str = "0.1") -> Path:
    """A minimal pure-Python wheel, so pip needs no index and no build backend."""
    files = {
        f"{name}/__init__.py": "VALUE = 42\n",
        f"{name}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{name}-{version}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record_name = f"{name}-{version}.dist-info/RECORD"
    lines = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        lines.append(f"{path},sha256={digest},{len(text.encode())}")
    lines.append(f"{record_name},,")
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
        zf.writestr(record_name, "\n".join(lines) + "\n")
    return wheel


def test_already_installed_is_not_reinstalled(capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.metadata

    install("PyTest")  # case-insensitive name match
    version = importlib.metadata.version("pytest")
    assert capsys.readouterr().out == f"'PyTest' is already installed (version: {version}).\n"


def test_install_into_the_user_site(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path)
    env = dict(os.environ)
    env.update({
        "PYTHONUSERBASE": str(tmp_path / "userbase"), "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_ROOT_USER_ACTION": "ignore", "PYTHONPATH": str(REPO),
    })
    script = (
        "from ai.backend.helpers import install\n"
        f"install({str(wheel)!r})\n"
        "import krtesthelper; print('value', krtesthelper.VALUE)\n"
        "install('krtesthelper')\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Successfully installed krtesthelper-0.1" in proc.stdout
    assert "value 42" in proc.stdout
    assert "'krtesthelper' is already installed (version: 0.1)." in proc.stdout
    assert list((tmp_path / "userbase").rglob("krtesthelper/__init__.py"))
