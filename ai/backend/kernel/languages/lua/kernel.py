"""Jupyter kernel for Lua 5.4: drives `lua5.4 -i` through a pty (`python -m ...lua.kernel -f CONN`)."""
from __future__ import annotations

from ..kernelbase.common import launch
from ..kernelbase.marker import MarkerReplKernel

LUA_KEYWORDS = ("and break do else elseif end false for function goto if in local nil not or repeat "
                "return then true until while").split()

# Loaded with -e before the interactive loop. __krb_run compiles a cell (as an expression first, so
# `1+2` gives an execute_result), runs it under xpcall, and reports results/errors on marker lines.
PRELUDE = r"""
_PROMPT = "@T@> " _PROMPT2 = "@T@+ "
local T = "@T@"
local function enc(s) return (tostring(s):gsub("\n", "\1")) end
local function report(kind, name, msg)
  io.stdout:flush()
  io.write(T, ":", kind, ":", name, ":", enc(msg), "\n")
  io.stdout:flush()
end
local function compile(path)
  local f = assert(io.open(path)) local src = f:read("a") f:close()
  local chunk = load("return " .. src, "=cell")
  if chunk then return chunk, true end
  local c, err = load(src, "=cell")
  return c, false, err
end
function __krb_run(path)
  local chunk, is_expr, err = compile(path)
  if not chunk then return report("error", "SyntaxError", err) end
  local res = table.pack(xpcall(chunk, debug.traceback))
  if not res[1] then
    local msg = tostring(res[2]):gsub("\n%s*%[C%]: in function 'xpcall'.*$", "")
    return report("error", "LuaError", msg)
  end
  io.stdout:flush()
  if is_expr and res.n > 1 then
    local parts = {}
    for i = 2, res.n do
      -- io.write/file:write return their file: not a value anyone wants to see
      if res[i] ~= io.stdout and res[i] ~= io.stderr then parts[#parts + 1] = tostring(res[i]) end
    end
    if #parts > 0 then report("result", "", table.concat(parts, "\t")) end
  end
end
function __krb_check(path)
  local f = assert(io.open(path)) local src = f:read("a") f:close()
  local c, err = load(src, "=cell")
  if c or load("return " .. src, "=cell") then print("complete")
  elseif err:match("<eof>$") then print("incomplete") else print("invalid") end
end
function __krb_complete(prefix)
  local base, sep, name = prefix:match("^(.-)([%.:]?)([%w_]*)$")
  local t = _G
  if sep ~= "" then
    for part in base:gmatch("[^%.:]+") do
      t = type(t) == "table" and rawget(t, part) or nil
    end
    if type(t) ~= "table" and type(t) ~= "string" then return end
    if type(t) == "string" then t = string end
  end
  local seen = {}
  local function add(tbl)
    for k in pairs(tbl) do
      if type(k) == "string" and k:sub(1, #name) == name and not k:match("^__krb") and not seen[k] then
        seen[k] = true print(base .. sep .. k)
      end
    end
  end
  add(t)
  local mt = getmetatable(t)
  if mt and type(mt.__index) == "table" then add(mt.__index) end
end
"""


class LuaKernel(MarkerReplKernel):
    implementation = "krunner-bridge-lua"
    language_info = {"name": "lua", "mimetype": "text/x-lua", "file_extension": ".lua",
                     "codemirror_mode": "lua", "pygments_lexer": "lua"}
    banner = "Lua 5.4 (lua5.4 -i)"
    keywords = tuple(LUA_KEYWORDS)
    install_hint = "Install it with: apt-get install lua5.4"
    completion_extra_chars = ".:"

    def spawn_argv(self) -> list[str]:
        return ["lua5.4", "-e", PRELUDE.replace("@T@", self.token), "-i"]

    def cell_command(self, code: str) -> str:
        return f'__krb_run("{self.cell_file(code, ".lua")}")'

    def completion_candidates(self, token: str, code: str) -> set[str]:
        names = set(self.query(f'__krb_complete("{token}")').split())
        return names | {k for k in self.keywords if "." not in token and ":" not in token}

    def is_complete_status(self, code: str) -> str:
        if self.start_error:
            return "unknown"
        path = self.cell_file(code, ".check.lua")
        status = self.query(f'__krb_check("{path}")').strip()
        return status if status in {"complete", "incomplete", "invalid"} else "unknown"


if __name__ == "__main__":
    launch(LuaKernel)
