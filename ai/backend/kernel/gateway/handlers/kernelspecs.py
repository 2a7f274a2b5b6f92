"""Kernelspecs: /api/kernelspecs[/name] and their resource files under /kernelspecs/name/file.

Spec `metadata` is passed through untouched: JupyterLab shows its debugger only when
`metadata.debugger` is true in the spec it gets from here.
"""
from __future__ import annotations

import logging
import mimetypes
import os
from urllib.parse import quote

from jupyter_client.kernelspec import NoSuchKernel
from tornado import web

from .base import APIHandler

log = logging.getLogger(__name__)

RESOURCE_FILES = ("kernel.js", "kernel.css")


def spec_model(base_url: str, name: str, spec, resource_dir: str) -> dict:
    """Kernel Gateway's model: name, spec (kernel.json as is), resource URLs."""
    resources = {}
    try:
        files = sorted(os.listdir(resource_dir))
    except OSError:
        files = []
    for fname in files:
        if fname.startswith("logo-") or fname in RESOURCE_FILES:
            key = os.path.splitext(fname)[0] if fname.startswith("logo-") else fname
            resources[key] = f"{base_url}kernelspecs/{quote(name)}/{quote(fname)}"
    return {"name": name, "spec": spec.to_dict(), "resources": resources}


class KernelSpecsHandler(APIHandler):
    def get(self) -> None:
        state = self.gateway
        base = state.config.base_url
        ksm = state.hub.spec_manager
        specs = {}
        for name, resource_dir in sorted(ksm.find_kernel_specs().items()):
            try:
                specs[name] = spec_model(base, name, ksm.get_kernel_spec(name), resource_dir)
            except Exception as exc:  # one broken kernel.json must not hide the others
                log.warning("skipping kernelspec %s: %s", name, exc)
        self.write_json({"default": state.default_kernel_name(), "kernelspecs": specs})

class KernelSpecHandler(APIHandler):
    def get(self, name: str) -> None:
        state = self.gateway
        ksm = state.hub.spec_manager
        try:
            spec = ksm.get_kernel_spec(name)
        except NoSuchKernel:
            raise web.HTTPError(404, f"Kernel spec does not exist: {name}") from None
        self.write_json(spec_model(state.config.base_url, name, spec, spec.resource_dir))


class KernelSpecResourceHandler(APIHandler):
    """A file of a spec's resource dir; anything resolving outside it is refused."""

    def get(self, name: str, path: str) -> None:
        ksm = self.gateway.hub.spec_manager
        try:
            root = os.path.realpath(ksm.get_kernel_spec(name).resource_dir)
        except NoSuchKernel:
            raise web.HTTPError(404, f"Kernel spec does not exist: {name}") from None
        target = os.path.realpath(os.path.join(root, path))
        if os.path.isabs(path) or os.path.commonpath([root, target]) != root or target == root:
            raise web.HTTPError(403, f"path outside the kernelspec's resources: {path}")
        if not os.path.isfile(target):
            raise web.HTTPError(404, f"no resource {path} in kernelspec {name}")
        ctype = mimetypes.guess_type(target)[0] or "application/octet-stream"
        with open(target, "rb") as fh:
            data = fh.read()
        self.set_header("Content-Type", ctype)
        self.set_header("Cache-Control", "max-age=3600")
        self.finish(data)
