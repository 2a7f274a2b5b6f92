"""Scheme (MIT/GNU Scheme, as the original meant): exec loads `main.scm` in `mit-scheme`; an error
is printed and exits 14 (mit-scheme's own code for it) instead of entering the error REPL."""
from .. import BatchContext, Language, Plan

LOADER = (
    "(begin (bind-condition-handler (list condition-type:error)"
    " (lambda (c) (fresh-line) (display \";\") (display (condition/report-string c)) (newline) (%exit 14))"
    " (lambda () (parameterize ((param:suppress-loading-message? #t)) (load \"main.scm\"))))"
    " (%exit 0))"
)


def exec_(ctx: BatchContext) -> Plan:
    if not ctx.exists("main.scm"):
        return ctx.no_entry("main.scm")
    return ctx.run(ctx.tool(ctx.runtime, "mit-scheme"), "--quiet", "--eval", LOADER)


LANGUAGE = Language(
    name="scheme", kernelspec="scheme", default_runtime="/usr/bin/mit-scheme",
    exec=exec_, install_hint="apt-get install mit-scheme",
)
