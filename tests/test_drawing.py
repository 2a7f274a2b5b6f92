"""`ai.backend.kernel.python.drawing`: the original's API and payload, checked against the
original's own code (PyPI wheel, tests/originallib.py), through the agent's client and through a
Jupyter client, and importable from an interpreter that only has our library dir."""
from __future__ import annotations

import asyncio
import base64
import builtins
import json
import os
import subprocess
import sys
import venv
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import msgpack
import pytest

from ai.backend.kernel.python import library_dir
from ai.backend.kernel.python.drawing import Canvas, Colors, encode_commands
from tests import originallib
from tests.agentlib import console_items, stderr_of
from tests.docslib import example
from tests.medialib import jupyter_displays
from tests.runnerlib import RunnerProcess

DOC_CODE = example("runtimes.md", "drawing")
SVG = "{http://www.w3.org/2000/svg}"


def original_payload(code: str) -> str:
    """What the original's own drawing module emits for `code` (its `_sorna_emit` captured)."""
    try:
        module = originallib.original_drawing()
    except RuntimeError as e:
        pytest.skip(f"the original wheel is not available: {e}")
    module.canvas._canvas_id_counter = 0
    emitted: list[Any] = []
    builtins._sorna_emit = emitted.append  # type: ignore[attr-defined]
    try:
        exec(code.replace("ai.backend.kernel.python.drawing", "_original_kernel.drawing"), {})
    finally:
        del builtins._sorna_emit  # type: ignore[attr-defined]
    assert len(emitted) == 1 and emitted[0].type == "application/x-sorna-drawing"
    return str(emitted[0].data)


def test_encoding_is_msgpack_of_the_command_tuples() -> None:
    commands = [(0, "canvas", 640, 480, "#ffffffff", "#000000ff"),
                (0, "obj", 0, ("circle", 1.5, -2, 300, "#000000ff", "#ffffff00", 0)),
                (0, "update", 0, "x", 2 ** 40), (0, "end-fill"), (0, "obj", 1, ("line", "é" * 40, None, True))]
    data = encode_commands(commands)
    assert base64.b64decode(data) == msgpack.packb(commands, use_bin_type=True)


def test_same_commands_as_the_original_module() -> None:
    """The documentation example, run by the original's module and ours, records the same list."""
    expected = originallib.decode_commands()(original_payload(DOC_CODE))
    captured: list[dict[str, str]] = []
    builtins._sorna_emit = captured.append  # type: ignore[attr-defined]
    try:
        import ai.backend.kernel.python.drawing.canvas as ours

        ours._canvas_ids = iter(range(10))
        exec(DOC_CODE, {})
    finally:
        del builtins._sorna_emit  # type: ignore[attr-defined]
    assert originallib.decode_commands()(captured[0]["data"]) == expected
    assert expected[0] == [0, "canvas", 400, 300, "#ffffffff", "#000000ff"]
    assert expected[1] == [0, "obj", 0, ["circle", 80, 80, 40, "#0000ffff", "#ffff00ff", 0]]
    assert [0, "update", 1, "rotate", 15] in expected


async def test_agent_gets_the_original_media_and_jupyter_gets_svg(
        runner: RunnerProcess, agent_client_factory: Any) -> None:
    expected = originallib.decode_commands()(original_payload(DOC_CODE))
    agent = await agent_client_factory(runner.replin_port, runner.replout_port)
    results = await agent.execute_until_done(None, "query", DOC_CODE)
    assert results[-1]["status"] == "finished" and results[-1]["exitCode"] == 0, stderr_of(results)
    media = [item[1] for item in console_items(results) if item[0] == "media"]
    assert len(media) == 1 and media[0][0] == "application/x-sorna-drawing", console_items(results)
    assert originallib.decode_commands()(media[0][1]) == expected

    # the same kernel through a plain Jupyter client: a display_data with an SVG of the shapes
    reply, bundles = await asyncio.to_thread(jupyter_displays, runner.dirs["runtime"], DOC_CODE)
    assert reply["content"]["status"] == "ok"
    assert len(bundles) == 1 and "application/x-sorna-drawing" in bundles[0]
    svg = ET.fromstring(bundles[0]["image/svg+xml"])
    assert (svg.get("width"), svg.get("height")) == ("400", "300")
    circle = svg.find(f"{SVG}circle")
    assert circle is not None and (circle.get("cx"), circle.get("r"), circle.get("fill")) == ("80", "40", "#ffff00")
    rect = svg.find(f"{SVG}rect[@class='rect']")
    assert rect is not None and rect.get("transform") == "rotate(15 220 80)"
    assert rect.get("fill") == "#0080ff" and rect.get("fill-opacity") == "0.502"
    assert len(svg.findall(f"{SVG}polygon[@class='triangle']")) == 2  # ours and the turtle's cursor
    lines = svg.findall(f"{SVG}line")
    assert len(lines) == 5  # one line + the turtle's square
    square = [(round(float(ln.get("x2"))), round(float(ln.get("y2")))) for ln in lines[1:]]
    assert square == [(260, 150), (260, 210), (200, 210), (200, 150)]


def test_svg_follows_updates_and_fills() -> None:
    canvas = Canvas(100, 100)
    ball = canvas.circle(10, 10, 5)
    ball.set_x(50)
    ball.fill(Colors.Red)
    ball.set_radius(8)
    canvas.begin_fill(Colors.Blue)
    canvas.line(0, 0, 20, 0)
    canvas.line(20, 0, 20, 20)
    canvas.end_fill()
    svg = ET.fromstring(canvas._repr_svg_())
    circle = svg.find(f"{SVG}circle")
    assert circle is not None and (circle.get("cx"), circle.get("r"), circle.get("fill")) == ("50", "8", "#ff0000")
    fill = svg.find(f"{SVG}polygon[@class='fill']")
    assert fill is not None and fill.get("points") == "0,0 20,0 20,20" and fill.get("fill") == "#0000ff"


def test_an_interpreter_with_only_the_library_dir_can_draw(tmp_path: Path) -> None:
    """An image's own Python (here: a bare venv, none of the runner's packages) imports the module
    from `library_dir()` alone; outside a kernel it saves the SVG and says where."""
    env_dir = tmp_path / "image-python"
    venv.EnvBuilder(with_pip=False, system_site_packages=False).create(env_dir)
    python = env_dir / "bin" / "python"
    code = ("import importlib.util as u\n"
            "assert u.find_spec('zmq') is None and u.find_spec('msgpack') is None\n" + DOC_CODE)
    proc = subprocess.run([str(python), "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(library_dir(tmp_path / "lib")), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert "saved as" in proc.stdout
    (saved,) = tmp_path.glob("canvas*.svg")
    assert ET.parse(saved).getroot().find(f"{SVG}circle") is not None


def test_the_library_dir_first_on_the_path_hides_nothing_of_the_package(tmp_path: Path) -> None:
    """Our own kernels started through the gateway of a Python runner get the library dir first on
    PYTHONPATH: the runner's interpreter must still import the whole package behind it."""
    import ai.backend.kernel

    real_root = Path(ai.backend.kernel.__file__).parents[3]
    env = {"PYTHONPATH": f"{library_dir(tmp_path / 'lib')}{os.pathsep}{real_root}", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", "import ai.backend.kernel.languages.bash.kernel, "
                           "ai.backend.kernel.python.drawing as d; print(d.__file__)"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "krunner-pylib-" in proc.stdout  # the drawing library still comes from the library dir


@pytest.mark.parametrize("lang", ["python", "app"])
async def test_python_kernel_under_an_image_interpreter_imports_it(
        lang: str, runner_dirs: dict[str, Path], tmp_path: Path, agent_client_factory: Any) -> None:
    """RUNTIME_PATH is another interpreter (a venv): its kernel finds the module through the
    library dir the runner puts first on PYTHONPATH."""
    env_dir = tmp_path / "image-python"
    venv.EnvBuilder(with_pip=False, system_site_packages=True).create(env_dir)
    proc = RunnerProcess(lang=lang, dirs=runner_dirs, runtime_path=str(env_dir / "bin" / "python"))
    await proc.start()
    try:
        agent = await agent_client_factory(proc.replin_port, proc.replout_port)
        code = ("import sys, json, ai.backend.kernel.python.drawing as d\n"
                "print(json.dumps([sys.prefix, d.__file__]))")
        results = await agent.execute_until_done(None, "query", code)
        assert results[-1]["exitCode"] == 0, stderr_of(results)
        prefix, path = json.loads("".join(i[1] for i in console_items(results) if i[0] == "stdout"))
        assert Path(prefix) == env_dir
        # <lib>/ai/backend/kernel/python/drawing/__init__.py
        assert Path(path).parents[5].name.startswith("krunner-pylib-")
    finally:
        await proc.stop()
