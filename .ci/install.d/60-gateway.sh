# Gateway tests (issue 5): jupyter_server drives our gateway as a real front-end (--gateway-url),
# websocket-client is a strict synchronous websocket client used by tests and bench/gateway.py.
python3 -m pip install -q "jupyter_server>=2.14" "websocket-client>=1.7"
