# Eval loop behind the Julia Jupyter kernel: one command per line on stdin ("run PATH",
# "complete PREFIX"), prompt "<token>> " after each, marker lines "<token>:<kind>:<name>:<text>".
# NOTE: written without a Julia toolchain at hand (none is packaged for Debian bookworm); untested.
const KRB_T = ARGS[1]
Base.exit_on_sigint(false)  # SIGINT becomes an InterruptException instead of killing us

krb_report(kind, name, text) = (flush(stdout); print(stdout, KRB_T, ":", kind, ":", name, ":",
                                                       replace(string(text), "\n" => "\x01"), "\n"); flush(stdout))

function krb_run(path)
    try
        value = Base.include_string(Main, read(path, String), "cell")
        if value !== nothing
            krb_report("result", "", sprint(show, MIME"text/plain"(), value))
        end
    catch err
        name = err isa InterruptException ? "KeyboardInterrupt" : string(nameof(typeof(err)))
        krb_report("error", name, name * ": " * sprint(showerror, err))
    end
end

function krb_complete(prefix)
    for n in names(Main; all=false, imported=true) ∪ names(Base)
        s = string(n)
        startswith(s, prefix) && println(s)
    end
end

print(stdout, KRB_T, "> "); flush(stdout)
while !eof(stdin)
    line = readline(stdin)
    if startswith(line, "run ")
        krb_run(line[5:end])
    elseif startswith(line, "complete ")
        krb_complete(line[10:end])
    end
    print(stdout, KRB_T, "> "); flush(stdout)
end
