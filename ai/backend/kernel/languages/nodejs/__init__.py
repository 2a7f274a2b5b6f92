"""Node.js: exec `node main.js` (runtime /usr/bin/node; the original's path had a typo)."""
from .. import Language, interpret

LANGUAGE = Language(
    name="nodejs", kernelspec="nodejs", default_runtime="/usr/bin/node",
    exec=interpret("node", "nodejs", "/usr/local/bin/node", entry="main.js"), install_hint="apt-get install nodejs",
)
