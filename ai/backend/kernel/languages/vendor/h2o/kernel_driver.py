# Run by the image's Driverless AI interpreter (any Python 3.6+, standard library only): the eval
# loop behind the vendor.h2o kernel. One JSON command per line on stdin; the prompt "<token>> "
# after each; marker lines "<token>:<kind>:<name>:<text>" report results, errors, completions.
import ast
import json
import keyword
import sys
import traceback

TOKEN = sys.argv[1]
NAMESPACE = {"__name__": "__main__", "__builtins__": __builtins__}


def report(kind, name, text):
    sys.stderr.flush()
    sys.stdout.flush()
    sys.stdout.write("%s:%s:%s:%s\n" % (TOKEN, kind, name, text.replace("\n", "\x01")))
    sys.stdout.flush()


def report_exception(exc):
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next  # the user's frames only
    lines = traceback.format_exception(type(exc), exc, tb)
    if isinstance(exc, SystemExit):
        lines = ["SystemExit: %s" % ("" if exc.code is None else exc.code)]
    report("error", type(exc).__name__, "".join(lines).rstrip("\n"))


def run(path):
    with open(path) as f:
        source = f.read()
    try:
        tree = ast.parse(source, "<cell>")
    except SyntaxError as exc:
        report("error", "SyntaxError", "".join(traceback.format_exception_only(type(exc), exc)).rstrip("\n"))
        return
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    try:
        exec(compile(tree, "<cell>", "exec"), NAMESPACE)
        if last is not None:
            value = eval(compile(last, "<cell>", "eval"), NAMESPACE)
            if value is not None:
                NAMESPACE["_"] = value
                report("result", "", repr(value))
    except BaseException as exc:  # KeyboardInterrupt and SystemExit too: the loop goes on
        report_exception(exc)


def complete(prefix):
    names = set(NAMESPACE) | set(dir(NAMESPACE["__builtins__"])) | set(keyword.kwlist)
    for name in sorted(n for n in names if n.startswith(prefix)):
        sys.stdout.write(name + "\n")


def main():
    while True:
        sys.stdout.write(TOKEN + "> ")
        sys.stdout.flush()
        try:
            line = sys.stdin.readline()
        except KeyboardInterrupt:
            continue
        if not line:
            return
        try:
            command = json.loads(line)
        except ValueError:
            continue
        try:
            if command.get("op") == "run":
                run(command["path"])
            elif command.get("op") == "complete":
                complete(command.get("prefix", ""))
        except KeyboardInterrupt:
            report("error", "KeyboardInterrupt", "KeyboardInterrupt")


main()
