"""Run by the Python 3.13 venv that holds backend.ai-agent and our plugin wheels (not by pytest).

Calls the agent's own code: `prepare_krunner_env` (entry point discovery, `init()`, versions.txt,
krunner-version, the archive lookup and the extraction through `docker run` of the agent's
extractor script), then `get_krunner_info` (distro matching and krunner-python) for a few image
distros. Only the Docker daemon is replaced: aiodocker's `Docker`/`DockerVolume` by stand-ins that
report the extractor image as present and the volumes as missing unless extracted, and the
`docker` command on PATH by tests/agentplugin.py's FAKE_DOCKER. Prints one JSON document.

usage: python agent_plugin_probe.py VOLUMES_DIR DISTRO...
"""
from __future__ import annotations

import asyncio
import importlib.metadata
import json
import sys
import types
from pathlib import Path

from aiodocker.exceptions import DockerError

import ai.backend.agent.docker.kernel as docker_kernel
from ai.backend.agent.agent import AbstractKernelCreationContext

VOLUMES = Path(sys.argv[1])


class StandInDocker:
    """What prepare_krunner_env_impl uses of aiodocker.Docker: images.list, volumes.create, close."""

    def __init__(self) -> None:
        self.images = types.SimpleNamespace(list=self._images)
        self.volumes = types.SimpleNamespace(create=self._create)

    async def _images(self) -> list[dict]:
        return [{"RepoTags": ["backendai-krunner-extractor:latest"]}]

    async def _create(self, config: dict) -> None:
        (VOLUMES / config["Name"]).mkdir(parents=True, exist_ok=True)

    async def close(self) -> None:
        pass


class StandInVolume:
    def __init__(self, docker: object, name: str) -> None:
        self.name = name

    async def show(self) -> dict:
        if not (VOLUMES / self.name / "VERSION").is_file():
            raise DockerError(404, {"message": f"no such volume: {self.name}"})
        return {"Name": self.name}


def main() -> None:
    docker_kernel.Docker = StandInDocker  # type: ignore[misc]
    docker_kernel.DockerVolume = StandInVolume  # type: ignore[misc]
    volumes = asyncio.run(docker_kernel.prepare_krunner_env({}))
    entry_points = [
        {"name": ep.name, "value": ep.value, "dist": ep.dist.name, "version": ep.dist.version}
        for ep in importlib.metadata.entry_points(group="backendai_krunner_v10")
    ]
    matches = {}
    for distro in sys.argv[2:]:
        ctx = types.SimpleNamespace(
            distro=distro, image_ref=f"stand-in/{distro}",
            local_config=types.SimpleNamespace(container=types.SimpleNamespace(krunner_volumes=volumes)),
        )
        arch, key, libc, volume, pyver = AbstractKernelCreationContext.get_krunner_info(ctx)
        root = VOLUMES / volume if volume else None
        site = root / f"lib/python{pyver}/site-packages/ai/backend" if root else None
        matches[distro] = {
            "arch": arch, "key": key, "libc": libc, "volume": volume, "python": pyver,
            "volume_version_file": (root / "VERSION").read_text().strip() if root else None,
            "has_bin_python": bool(root and (root / "bin/python").exists()),
            "mount_points": bool(site and (site / "kernel").is_dir() and (site / "helpers").is_dir()),
        }
    print(json.dumps({"volumes": volumes, "entry_points": entry_points, "matches": matches}))


main()
