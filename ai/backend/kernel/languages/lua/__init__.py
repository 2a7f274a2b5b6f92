"""Lua: exec `lua main.lua`."""
from .. import Language, interpret

LANGUAGE = Language(
    name="lua", kernelspec="lua", default_runtime="/usr/bin/lua5.4",
    exec=interpret("lua5.4", "lua", entry="main.lua"), install_hint="apt-get install lua5.4",
)
