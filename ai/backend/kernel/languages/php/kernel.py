"""Jupyter kernel for PHP: a long-running eval loop (kernel_driver.php) in a pty
(`python -m ...php.kernel -f CONN`)."""
from __future__ import annotations

import json
from pathlib import Path

from ..kernelbase.common import launch
from ..kernelbase.marker import MarkerReplKernel

DRIVER = Path(__file__).with_name("kernel_driver.php")
PHP_KEYWORDS = ("abstract and array as break callable case catch class clone const continue declare default "
                "do echo else elseif empty enddeclare endfor endforeach endif endswitch endwhile enum "
                "extends final finally fn for foreach function global goto if implements include "
                "instanceof insteadof interface isset list match namespace new or print private "
                "protected public readonly require return static switch throw trait try unset use var "
                "while xor yield true false null").split()


class PhpKernel(MarkerReplKernel):
    implementation = "krunner-bridge-php"
    language_info = {"name": "php", "mimetype": "application/x-httpd-php", "file_extension": ".php",
                     "codemirror_mode": "php", "pygments_lexer": "php"}
    banner = "PHP (eval loop)"
    keywords = tuple(PHP_KEYWORDS)
    install_hint = "Install it with: apt-get install php-cli"
    completion_extra_chars = "$\\"
    bracket_syntax = {"line_comments": ("//", "#"), "quotes": "\"'"}

    def spawn_argv(self) -> list[str]:
        return ["php", "-d", "display_errors=stderr", "-d", "html_errors=0", "-d", "log_errors=0", str(DRIVER), self.token]

    def cell_command(self, code: str) -> str:
        return json.dumps({"op": "run", "path": str(self.cell_file(code, ".php"))})

    def completion_candidates(self, token: str, code: str) -> set[str]:
        names = set(self.query(json.dumps({"op": "complete", "prefix": token})).split())
        if not token.startswith("$"):
            names |= set(self.keywords)
        return names

    def is_complete_status(self, code: str) -> str:
        if self.start_error:
            return "unknown"
        source = code if code.lstrip().startswith("<?php") else "<?php " + code
        path = self.cell_file(source, ".check.php")
        status = self.query(json.dumps({"op": "check", "path": str(path)})).strip()
        return status if status in {"complete", "incomplete", "invalid"} else "unknown"


if __name__ == "__main__":
    launch(PhpKernel)
