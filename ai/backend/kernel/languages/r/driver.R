# Driver of the krunner R kernel (ai/backend/kernel/languages/r/kernel.py; docs/languages.md#r).
# R reads this file as its user profile (R_PROFILE_USER), sources the user's own profile, then
# attaches "tools:krb": the functions the kernel calls, one short console line per request.
# Reports go to stdout as marker lines `<token>:<kind>:<name>:<text>` (newlines in text as \001);
# an error's text is its message, \002, then what R would print.
local({
  token <- Sys.getenv("KRB_R_TOKEN")
  plot_dir <- Sys.getenv("KRB_R_PLOT_DIR")
  user_profile <- Sys.getenv("KRB_R_USER_PROFILE")
  Sys.unsetenv(c("KRB_R_TOKEN", "KRB_R_PLOT_DIR", "KRB_R_USER_PROFILE"))
  if (!nzchar(user_profile)) {
    user_profile <- if (file.exists(".Rprofile")) ".Rprofile" else path.expand("~/.Rprofile")
  }
  if (file.exists(user_profile)) {
    try(sys.source(user_profile, envir = globalenv()))
  }

  krb <- attach(NULL, name = "tools:krb")
  state <- new.env()
  state$cell <- 0L
  state$devices <- integer(0)

  report <- function(kind, name, text) {
    text <- paste(text, collapse = "\n")
    cat(token, ":", kind, ":", name, ":", gsub("\n", "\001", text, fixed = TRUE), "\n", sep = "")
  }

  # A device opened only when the cell plots: R calls getOption("device") lazily. Set once
  # (below): a user who sets another device keeps it.
  plot_device <- function(...) {
    grDevices::png(file.path(plot_dir, sprintf("cell%d-dev%d-%%03d.png", state$cell, length(state$devices) + 1L)),
                   width = 7, height = 5, units = "in", res = 96)
    state$devices <- c(state$devices, grDevices::dev.cur())
  }

  # After the cell: close the devices it opened (not the user's own) and report their pages.
  flush_plots <- function() {
    opened <- state$devices
    state$devices <- integer(0)
    if (!length(opened)) return(invisible())
    for (dev in intersect(opened, grDevices::dev.list())) grDevices::dev.off(dev)
    files <- list.files(plot_dir, pattern = sprintf("^cell%d-.*[.]png$", state$cell), full.names = TRUE)
    for (f in sort(files)) if (isTRUE(file.size(f) > 0)) report("plot", "image/png", f) else unlink(f)
  }

  our_eval <- quote(eval(expr, globalenv()))
  call_text <- function(cond) {  # where R would say it happened ("" at top level)
    call <- conditionCall(cond)
    if (is.null(call) || identical(call, our_eval)) "" else paste(deparse(call, nlines = 1L), collapse = "")
  }

  error_text <- function(e) {
    call <- call_text(e)
    msg <- conditionMessage(e)
    if (!nzchar(call)) paste0("Error: ", msg) else paste0("Error in ", call, " : ", msg)
  }

  show_warning <- function(w) {
    call <- call_text(w)
    where <- if (nzchar(call)) paste0(" in ", call) else ""
    message("Warning message", where, ":\n", conditionMessage(w))
    invokeRestart("muffleWarning")
  }

  run_expr <- function(expr) {
    tryCatch(withCallingHandlers({
      value <- withVisible(eval(expr, globalenv()))
      if (value$visible) {
        text <- utils::capture.output(print(value$value))
        report("result", "text/plain", text)
      }
      TRUE
    }, warning = show_warning), error = function(e) {
      report("error", "Error", paste0(conditionMessage(e), "\002", error_text(e)))
      FALSE
    })
  }

  krb$.krb_run <- function(path) {
    state$cell <- state$cell + 1L
    exprs <- tryCatch(parse(path, keep.source = FALSE, encoding = "UTF-8"), error = function(e) e)
    if (inherits(exprs, "error")) {
      msg <- sub(paste0(path, ":"), "", conditionMessage(exprs), fixed = TRUE)
      report("error", "ParseError", paste0(msg, "\002", "Error: ", msg))
    } else {
      on.exit(flush_plots())
      for (expr in exprs) if (!run_expr(expr)) break
    }
    invisible()
  }

  krb$.krb_complete <- function(path, cursor) {
    line <- paste(readLines(path, warn = FALSE, encoding = "UTF-8"), collapse = "\n")
    utils:::.assignLinebuffer(line)
    utils:::.assignEnd(cursor)
    token <- utils:::.guessTokenFromLine()
    utils:::.completeToken()
    cat(c(cursor - nchar(token), utils:::.retrieveCompletions()), sep = "\n")
    cat("\n")
  }

  krb$.krb_is_complete <- function(path) {
    status <- tryCatch({
      parse(path, keep.source = FALSE, encoding = "UTF-8")
      "complete"
    }, error = function(e) {
      msg <- conditionMessage(e)
      if (grepl("unexpected end of input|INCOMPLETE_STRING", msg)) "incomplete" else "invalid"
    })
    cat(status, "\n", sep = "")
  }

  # readLines("stdin") reads a dup of fd 0, which the kernel cannot tell from a busy R; the
  # console connection reads the same pty and its reads are answered with an input_request.
  krb$readLines <- function(con = stdin(), ...) {
    if (identical(con, "stdin")) con <- stdin()
    base::readLines(con, ...)
  }

  options(prompt = paste0(token, "> "), continue = paste0(token, "+ "), device = plot_device,
          width = 80L)
})
