"""PHP: exec `php main.php`."""
from .. import Language, interpret

LANGUAGE = Language(
    name="php", kernelspec="php", default_runtime="/usr/bin/php",
    exec=interpret("php", entry="main.php"), install_hint="apt-get install php-cli",
)
