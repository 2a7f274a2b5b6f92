<?php
// Eval loop behind the PHP Jupyter kernel (php -a dies on SIGINT, so we run our own loop).
// One JSON command per line on stdin; prompt "<token>> " after each; marker lines
// "<token>:<kind>:<name>:<text>" report results, errors and completions.
$__krb_T = $argv[1];
ini_set('display_errors', 'stderr');
error_reporting(E_ALL);
pcntl_async_signals(true);
pcntl_signal(SIGINT, function () { throw new Error('interrupted'); });

function __krb_report(string $kind, string $name, string $text): void {
    global $__krb_T;
    fflush(STDOUT);
    echo "$__krb_T:$kind:$name:" . str_replace("\n", "\x01", $text) . "\n";
    fflush(STDOUT);
}

// concise warnings/notices on stderr (no path of this driver in them)
set_error_handler(function (int $no, string $msg, string $file, int $line): bool {
    $kind = match ($no) {
        E_WARNING, E_USER_WARNING => 'Warning', E_NOTICE, E_USER_NOTICE => 'Notice',
        E_DEPRECATED, E_USER_DEPRECATED => 'Deprecated', default => 'Error',
    };
    fflush(STDOUT);
    fwrite(STDERR, "$kind: $msg (line $line)\n");
    return true;
});

register_shutdown_function(function () {
    $e = error_get_last();
    if ($e && in_array($e['type'], [E_ERROR, E_PARSE, E_CORE_ERROR, E_COMPILE_ERROR], true)) {
        __krb_report('error', 'FatalError', "{$e['message']} (line {$e['line']})");
    }
});

function __krb_complete(string $prefix): void {
    $names = [];
    if (str_starts_with($prefix, '$')) {
        foreach (array_keys($GLOBALS) as $v) {
            if (!str_starts_with($v, '__krb')) { $names[] = '$' . $v; }
        }
    } else {
        $f = get_defined_functions();
        $names = array_merge($f['internal'], $f['user'], get_declared_classes(),
                             array_keys(get_defined_constants()));
    }
    foreach ($names as $n) {
        if (strncasecmp($n, $prefix, strlen($prefix)) === 0) { echo $n, "\n"; }
    }
}

echo "$__krb_T> ";
while (($__krb_line = fgets(STDIN)) !== false) {
    $__krb_cmd = json_decode($__krb_line, true);
    if (!is_array($__krb_cmd)) { echo "$__krb_T> "; continue; }
    if ($__krb_cmd['op'] === 'complete') {
        __krb_complete($__krb_cmd['prefix']);
    } elseif ($__krb_cmd['op'] === 'check') {
        try { token_get_all(file_get_contents($__krb_cmd['path']), TOKEN_PARSE); echo "complete\n"; }
        catch (ParseError $e) { echo (str_contains($e->getMessage(), 'end of file') || str_starts_with($e->getMessage(), 'Unclosed')) ? "incomplete\n" : "invalid\n"; }
    } else {
        $__krb_code = file_get_contents($__krb_cmd['path']);
        $__krb_code = preg_replace('/^\s*<\?php\b/', '', $__krb_code);
        $__krb_code = preg_replace('/\?>\s*$/', '', $__krb_code);
        $__krb_trim = rtrim($__krb_code);
        try {
            // a bare expression (no trailing ';' or '}') is evaluated for its value
            $__krb_expr = $__krb_trim !== '' && !in_array(substr($__krb_trim, -1), [';', '}'], true);
            $__krb_r = eval($__krb_expr ? "return $__krb_trim;" : $__krb_code);
            if ($__krb_r !== null) {
                __krb_report('result', '', var_export($__krb_r, true));
            }
        } catch (Throwable $__krb_e) {
            $__krb_name = get_class($__krb_e);
            if ($__krb_e instanceof Error && $__krb_e->getMessage() === 'interrupted') {
                $__krb_name = 'KeyboardInterrupt';
            }
            __krb_report('error', $__krb_name, "$__krb_name: " . $__krb_e->getMessage()
                         . " (line " . $__krb_e->getLine() . ")");
        }
        unset($__krb_code, $__krb_trim, $__krb_expr, $__krb_r, $__krb_e, $__krb_name);
    }
    fflush(STDOUT);
    echo "$__krb_T> ";
}
