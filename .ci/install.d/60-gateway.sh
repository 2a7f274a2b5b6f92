# Gateway tests (issue 5): jupyter_server drives our gateway as a real front-end (--gateway-url),
# websocket-client is a strict synchronous websocket client used by tests and bench/gateway.py.
python3 -m pip install -q "jupyter_server>=2.14" "websocket-client>=1.7"
# JupyterLab's client library, driven from Node by tests/test_gateway_jlab.py (node/npm: 20-toolchains.sh).
KRUNNER_JLAB_SERVICES_DIR="${KRUNNER_JLAB_SERVICES_DIR:-/opt/krunner-ci/jlab-services}"
if [ ! -d "$KRUNNER_JLAB_SERVICES_DIR/node_modules/@jupyterlab/services" ] && command -v npm >/dev/null; then
    mkdir -p "$KRUNNER_JLAB_SERVICES_DIR"
    (cd "$KRUNNER_JLAB_SERVICES_DIR" && npm install --silent --no-audit --no-fund "@jupyterlab/services@7" "ws@8" >/dev/null)
fi
