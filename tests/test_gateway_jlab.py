"""JupyterLab's own client library (@jupyterlab/services, in Node) against the gateway: kernelspec
debugger flag, v1 subprotocol negotiation, execute, debugInfo, restart, shutdown."""
from __future__ import annotations

import json
import os
import subprocess


from tests.gatewaylib import GatewayProcess, isolated_env
from tests import toolcheck
from tests.toolcheck import require_tool

# Installed by .ci/install.d/60-gateway.sh (npm install @jupyterlab/services ws)
JLAB_DIR = os.environ.get("KRUNNER_JLAB_SERVICES_DIR", "/opt/krunner-ci/jlab-services")

SCRIPT = r"""
// Drive our gateway with JupyterLab's own client library (@jupyterlab/services) from Node.
const { ServerConnection, KernelManager, KernelSpecAPI } = require('@jupyterlab/services');
const WebSocket = require('ws');
const [base, token] = process.argv.slice(2);

async function main() {
  const serverSettings = ServerConnection.makeSettings({
    baseUrl: base, wsUrl: base.replace(/^http/, 'ws'), token, appendToken: true, WebSocket,
  });
  const out = {};
  const specs = await KernelSpecAPI.getSpecs(serverSettings);
  out.debuggerInSpec = specs.kernelspecs['python3'].metadata.debugger === true;
  const km = new KernelManager({ serverSettings });
  await km.ready;
  const t0 = Date.now();
  const kernel = await km.startNew({ name: 'python3' });
  const info = await kernel.info;  // first kernel_info_reply
  out.startMs = Date.now() - t0;
  out.subprotocol = kernel._selectedProtocol;
  out.implementation = info.implementation;
  let stdout = '';
  const future = kernel.requestExecute({ code: 'print(6 * 7)' });
  future.onIOPub = msg => { if (msg.header.msg_type === 'stream') stdout += msg.content.text; };
  const reply = await future.done;
  out.execute = [reply.content.status, stdout];
  const times = [];
  for (let i = 0; i < 50; i++) {
    const t = process.hrtime.bigint();
    await kernel.requestExecute({ code: 'print(1)' }).done;
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  times.sort((a, b) => a - b);
  out.p50Ms = times[25];
  const dbg = await kernel.requestDebug({ type: 'request', seq: 0, command: 'debugInfo', arguments: {} }).done;
  out.debugInfo = dbg.content.success === true && 'isStarted' in dbg.content.body;
  await kernel.restart();
  out.afterRestart = (await kernel.requestExecute({ code: '1' }).done).content.status;
  await kernel.shutdown();
  out.status = kernel.status;
  console.log(JSON.stringify(out));
  km.dispose();
  process.exit(0);
}
main().catch(e => { console.error(e && e.stack || e); process.exit(1); });
"""


def test_jupyterlab_services_client(tmp_path):
    require_tool("node")
    if not os.path.isdir(os.path.join(JLAB_DIR, "node_modules", "@jupyterlab", "services")):
        toolcheck.missing("@jupyterlab/services", f"not installed in {JLAB_DIR}; .ci/install.d/60-gateway.sh")
    script = tmp_path / "jlab.cjs"
    script.write_text(SCRIPT)
    env = isolated_env(str(tmp_path), NODE_PATH=os.path.join(JLAB_DIR, "node_modules"))
    with GatewayProcess(env=env, token="jlab") as gw:
        out = subprocess.run(["node", str(script), gw.url + "/", "jlab"], env=env, capture_output=True,
                             text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["debuggerInSpec"] is True
    assert result["subprotocol"] == "v1.kernel.websocket.jupyter.org"
    assert result["implementation"] == "ipython"
    assert result["execute"] == ["ok", "42\n"]
    assert result["debugInfo"] is True
    assert result["afterRestart"] == "ok"
    assert result["status"] == "dead"  # JupyterLab's state after a shutdown
