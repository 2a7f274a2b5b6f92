"""Jupyter kernel for C++: each cell is compiled with g++ and run (`python -m ...cpp.kernel -f CONN`)."""
from __future__ import annotations

import re

from ..c.kernel import C_BUILTINS, C_KEYWORDS, CKernel
from ..kernelbase.common import launch
from ..kernelbase.wrapping import Program, looks_like_function, partition

CPP_KEYWORDS = C_KEYWORDS + ("class namespace template typename public private protected virtual "
                             "override const_cast static_cast dynamic_cast reinterpret_cast new delete "
                             "try catch throw using nullptr auto constexpr decltype noexcept operator "
                             "this friend mutable explicit").split()
CPP_BUILTINS = C_BUILTINS + ("std cout cin cerr endl string vector map unordered_map set pair "
                             "make_pair sort min max swap to_string getline size begin end push_back "
                             "emplace_back").split()
DECL_RE = re.compile(r"^(typedef|struct|union|enum|extern|static|class|namespace|template|using)\b|^#")


def cpp_is_declaration(unit: str) -> bool:
    return bool(DECL_RE.match(unit)) or looks_like_function(unit)


class CppKernel(CKernel):
    implementation = "krunner-bridge-cpp"
    language_info = {"name": "c++", "mimetype": "text/x-c++src", "file_extension": ".cpp",
                     "codemirror_mode": "text/x-c++src", "pygments_lexer": "cpp"}
    banner = "C++ (g++), one program per cell"
    keywords = tuple(CPP_KEYWORDS)
    builtins = tuple(CPP_BUILTINS)
    source_name = "main.cpp"
    toolchain = ("g++",)
    install_hint = "Install it with: apt-get install g++"
    compiler = "g++"
    std_flags = ("-std=gnu++17",)
    prelude_name = "krb_prelude.hpp"
    default_headers = ("cstdio", "cstdlib", "cstring", "cmath", "iostream", "string", "vector", "map",
                       "algorithm")
    precompile = True

    def prelude_text(self) -> str:
        return super().prelude_text() + "using namespace std;\n"

    def wrap(self, code: str) -> str | Program:
        if re.search(r"\bmain\s*\(", code):
            return code
        top, body = partition(code, cpp_is_declaration)
        return Program().units(top).add("int main() {").units(body, "    ").add("    return 0;\n}")


if __name__ == "__main__":
    launch(CppKernel)
