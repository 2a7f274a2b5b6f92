# Sourced by .ci/run. The test harness (tests/agentlib) drives our runner with the REAL agent
# code-runner class from the backend.ai-agent wheel: fetch that wheel (never committed) into the
# cache the harness reads, and install what its kernel.py imports at run time.
: "${KRUNNER_AGENT_WHEEL_DIR:=$HOME/.cache/krunner-bridge/agent}"
export KRUNNER_AGENT_WHEEL_DIR
if [ ! -s "$KRUNNER_AGENT_WHEEL_DIR/backend_ai_agent-26.9.6-py3-none-any.whl" ]; then
    mkdir -p "$KRUNNER_AGENT_WHEEL_DIR"
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.13 \
        'backend.ai-agent==26.9.6' -d "$KRUNNER_AGENT_WHEEL_DIR"
fi
# kernel.py: `from async_timeout import timeout` (the wheel pins ~=4.0) and, under Python < 3.12,
# typing_extensions.override (see tests/agentlib/loader.py TRANSFORMS).
python3 -c 'import async_timeout' 2>/dev/null || python3 -m pip install -q 'async_timeout~=4.0'
python3 -c 'import typing_extensions' 2>/dev/null || python3 -m pip install -q typing_extensions
python3 -c 'import pytest_asyncio, msgpack, zmq' 2>/dev/null || python3 -m pip install -q pytest-asyncio msgpack pyzmq
