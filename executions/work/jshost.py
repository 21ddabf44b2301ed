"""The JavaScript sandbox host: a child process of a Redrive worker that runs functions' code in V8
(mini-racer), one request at a time, answering on stdout. Started by executions/work/javascript.py
as `python -I jshost.py`; it imports nothing of Redrive or Django and gets no environment, so code
that broke out of V8 would find no database URL or secret key here.

Why a process: V8's heap limit does not cover memory outside the heap (ArrayBuffer backing
stores, Intl/ICU objects), and code that exhausts memory anyway or hangs V8 must not take the worker
with it. Here RLIMIT_DATA bounds all of the process's memory during an execution, and the worker
kills this process when it does not answer in time.

An execution gets a V8 isolate no other code has run in (mini-racer has one context per isolate,
and V8 gives no sound way to check that code left an isolate clean: it can reach built-in
prototypes no global names), created while the worker records the last result; or, when the
request names a `reuse` scope (its tenant), the warm isolate the last successful run of the same
code in that scope left, as AWS Lambda reuses an execution environment: what a run leaves
in globals the next run of that function sees; nothing crosses scopes or code, and the isolate of
a run that failed, timed out or ran short of memory is closed, so a retry starts from a fresh one.

Protocol: one JSON object per line each way.
  -> {"op": "run", "code", "args" (JSON text of {payload, context, env}), "timeoutMs", "memoryMb",
      "logLimit", "lineLimit", "resultLimit", "reuse" (optional: the scope a warm isolate serves)}
  <- {"done": true, "ok": true, "result", "logs"} | {"done": true, "ok": false, "error": {name,
      message, stack}, "logs"} | {"timeout": true, "logs"} | {"memory": true, "logs"}
  -> {"op": "compile", "code"}
  <- {"ok": true} | {"ok": false, "error": {name, message, line, source}}
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import sys
import threading
import time
from collections import OrderedDict

from py_mini_racer import JSEvalException, JSOOMException, JSTimeoutException, mini_racer

MIB = 1024 * 1024
# Warm isolates a host keeps (the least recently used is closed first), and the runs one serves
# before it is replaced. V8 collects a warm isolate's garbage lazily (each run's eval'd calls
# stay until a full collection: ~28 kB a run), so past WARM_HEAP_COLLECT of used heap the host
# asks for a full collection (~5 ms, once in a few hundred runs); one still holding more than
# WARM_HEAP_SHARE of its limit after it is closed.
WARM_MAX = 8
WARM_RUNS = 1000
WARM_HEAP_COLLECT = 8 * MIB
WARM_HEAP_SHARE = 0.5
# Room above the code's own memory limit for V8's bookkeeping and this process's Python.
RLIMIT_SLACK = 64 * MIB
USER_SOURCE = "function.js"

# Installed in every isolate before any code runs. Globals that schedule work outside the calls
# the host makes (Atomics.waitAsync, WebAssembly compilation, FinalizationRegistry callbacks,
# mini-racer's own setTimeout) are removed: then every line of user code runs inside a call the
# host can time out. setTimeout/clearTimeout are replaced by timers that step() runs when due.
HARNESS = r"""
(function (G, limits) {
  "use strict";
  const apply = Reflect.apply, stringify = JSON.stringify, parse = JSON.parse, now = Date.now;
  const DateC = Date, toISOString = Date.prototype.toISOString, StringC = String;
  const then = Promise.prototype.then, charCodeAt = String.prototype.charCodeAt;
  const slice = String.prototype.slice, push = Array.prototype.push;
  const AsyncFunction = (async function () {}).constructor;
  for (const name of ["Atomics", "SharedArrayBuffer", "WebAssembly", "FinalizationRegistry"]) {
    delete G[name];
  }
  G.__timer_manager = undefined;

  function utf8Length(s) {
    let n = 0;
    for (let i = 0; i < s.length; i++) {
      const c = apply(charCodeAt, s, [i]);
      if (c < 0x80) n += 1;
      else if (c < 0x800) n += 2;
      else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) { n += 4; i++; }
      else n += 3;
    }
    return n;
  }

  // --- console: lines kept per stream, the last limits.log bytes of each ---
  const streams = { stdout: [], stderr: [] }, kept = { stdout: 0, stderr: 0 };
  let seq = 0, produced = 0, truncated = false;
  function show(value) {
    if (typeof value === "string") return value;
    if (value instanceof Error) return StringC(value.stack || value);
    if (value === undefined || typeof value === "function" || typeof value === "symbol" ||
        typeof value === "bigint") return StringC(value);
    try { return stringify(value); } catch (e) { return StringC(value); }
  }
  function write(level, stream, args) {
    let message = "";
    for (let i = 0; i < args.length; i++) message += (i ? " " : "") + show(args[i]);
    const size = utf8Length(message) + 1;
    produced += size;
    if (message.length > limits.line) {
      message = apply(slice, message, [0, limits.line]) + " …[cut]";
      truncated = true;
    }
    const lines = streams[stream];
    apply(push, lines, [{ seq: seq++, size, timestamp: apply(toISOString, new DateC(), []),
                          level, message }]);
    kept[stream] += size;
    while (kept[stream] > limits.log && lines.length) {
      kept[stream] -= lines.shift().size;
      truncated = true;
    }
  }
  const console = Object.freeze({
    log: (...a) => write("info", "stdout", a),
    info: (...a) => write("info", "stdout", a),
    debug: (...a) => write("debug", "stdout", a),
    trace: (...a) => write("debug", "stdout", a),
    warn: (...a) => write("warn", "stderr", a),
    error: (...a) => write("error", "stderr", a),
  });
  G.console = console;
  function logs() {
    const all = streams.stdout.concat(streams.stderr).sort((a, b) => a.seq - b.seq);
    const entries = all.map(e => ({ timestamp: e.timestamp, level: e.level, message: e.message }));
    return { entries, truncated, bytes: produced };
  }

  // --- timers, run by step() ---
  const timers = new Map();
  let nextTimer = 1;
  G.setTimeout = function (fn, delay, ...args) {
    const id = nextTimer++;
    timers.set(id, { due: now() + Math.max(0, Number(delay) || 0), fn, args });
    return id;
  };
  G.clearTimeout = function (id) { timers.delete(id); };

  // --- the function ---
  let fn = null, outcome = null;
  function describe(e) {
    if (e !== null && typeof e === "object" && typeof e.stack === "string") {
      let name = StringC(e.name || "Error");
      if (name === "Error" && e.constructor && typeof e.constructor.name === "string" &&
          e.constructor.name) name = e.constructor.name;
      return { name, message: StringC(e.message), stack: e.stack };
    }
    return { name: "Error", message: show(e), stack: "" };
  }
  function fail(e) {
    if (outcome === null) outcome = { done: true, ok: false, error: describe(e) };
  }
  function succeed(value) {
    if (outcome !== null) return;
    try {
      const text = value === undefined ? "null" : stringify(value);
      outcome = { done: true, ok: true, result: text === undefined ? "null" : text };
    } catch (e) {
      fail(new TypeError("the function's result is not JSON: " + StringC(e.message)));
    }
  }
  const harness = Object.freeze({
    reset() {
      // A warm isolate's next run: no outcome, log line or timer of the last one carries over.
      outcome = null; seq = 0; produced = 0; truncated = false;
      streams.stdout = []; streams.stderr = []; kept.stdout = 0; kept.stderr = 0;
      timers.clear();
    },
    compile(code) {
      fn = new AsyncFunction("payload", "context", "env", "console",
                             code + "\n//# sourceURL=" + limits.source);
    },
    start(argsJson) {
      const a = parse(argsJson);
      let promise;
      try { promise = apply(fn, undefined, [a.payload, a.context, a.env, console]); }
      catch (e) { fail(e); return; }
      apply(then, promise, [succeed, fail]);
    },
    step() {
      if (outcome !== null) {
        outcome.logs = logs();
        return stringify(outcome);
      }
      let ran = 0;
      const t = now();
      const due = [...timers].filter(([, x]) => x.due <= t)
        .sort((a, b) => a[1].due - b[1].due || a[0] - b[0]);
      for (const [id, timer] of due) {
        timers.delete(id);
        ran++;
        try { apply(timer.fn, undefined, timer.args); } catch (e) { fail(e); }
      }
      let next = null;
      for (const x of timers.values()) if (next === null || x.due < next) next = x.due;
      const delay = next === null ? null : Math.max(0, next - now());
      return stringify({ done: false, ran, delay });
    },
    logs() { return stringify(logs()); },
    probe() {
      // Function and AsyncFunction put the same lines before the body.
      return new Function("payload", "context", "env", "console",
                          "return new Error().stack\n//# sourceURL=" + limits.source)();
    },
  });
  Object.defineProperty(G, "__redrive", { value: harness });
})
"""


class Host:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.spare: tuple | None = None
        self.warm: OrderedDict[tuple, tuple] = OrderedDict()  # key -> (manager, racer, runs)
        self.offset = 0  # lines V8 puts before the body of a Function-constructor function
        self.soft, self.hard = resource.getrlimit(resource.RLIMIT_DATA)

    def isolate(self, limits: dict) -> tuple:
        """A fresh isolate with the harness installed (the spare one, if it has these limits)."""
        spare, self.spare = self.spare, None
        if spare is not None and spare[2] == limits:
            return spare
        if spare is not None:
            spare[0].__exit__(None, None, None)
        manager = mini_racer(self.loop)
        racer = manager.__enter__()
        racer.eval(
            HARNESS + f"(globalThis, {json.dumps(limits)})\n//# sourceURL=redrive-sandbox.js",
            timeout_sec=10,
        )
        return manager, racer, limits

    def refill(self, limits: dict) -> None:
        if self.spare is None:
            self.spare = self.isolate(limits)

    def line_offset(self, racer) -> int:
        if not self.offset:
            stack = racer.eval("__redrive.probe()", timeout_sec=10)
            match = re.search(re.escape(USER_SOURCE) + r":(\d+)", stack)
            self.offset = int(match.group(1)) - 1 if match else 0
        return self.offset

    def compile(self, request: dict) -> dict:
        manager, racer, _ = self.isolate(_limits(request))
        offset = self.line_offset(racer)
        try:
            racer.eval(f"__redrive.compile({json.dumps(request['code'])})", timeout_sec=10)
            return {"ok": True, "offset": offset}
        except JSEvalException as exc:
            return {"ok": False, "offset": offset, "error": syntax_error(str(exc), offset)}
        finally:
            manager.__exit__(None, None, None)

    def run(self, request: dict) -> dict:
        limits = _limits(request)
        memory = int(request["memoryMb"]) * MIB
        key = (
            (request["reuse"], request["code"], memory, json.dumps(limits, sort_keys=True))
            if request.get("reuse")
            else None
        )
        warm = self.warm.pop(key, None) if key else None
        deadline = time.monotonic() + int(request["timeoutMs"]) / 1000
        if warm is not None:
            manager, racer, runs = warm
            offset = self.line_offset(racer)
            racer.eval("__redrive.reset()", timeout_sec=10)
        else:
            (manager, racer, _), runs = self.isolate(limits), 0
            offset = self.line_offset(racer)
            try:
                racer.set_hard_memory_limit(memory)
                racer.eval(f"__redrive.compile({json.dumps(request['code'])})", timeout_sec=10)
            except JSEvalException as exc:
                manager.__exit__(None, None, None)
                error = syntax_error(str(exc), offset)
                return {"done": True, "ok": False, "offset": offset, "error": error, "logs": None}
        resource.setrlimit(resource.RLIMIT_DATA, (vm_data() + memory + RLIMIT_SLACK, self.hard))
        try:
            answer = self._drive(racer, request, deadline)
        except MemoryError:
            answer = {"memory": True}
        finally:
            resource.setrlimit(resource.RLIMIT_DATA, (self.soft, self.hard))
        if answer.get("logs") is None:
            answer["logs"] = self._logs_after_stop(racer)
        answer["offset"] = offset
        if key is not None and answer.get("ok") and self.keep_warm(racer, memory, runs + 1):
            self.warm[key] = (manager, racer, runs + 1)
            while len(self.warm) > WARM_MAX:
                self.warm.popitem(last=False)[1][0].__exit__(None, None, None)
        else:
            # Closing terminates whatever is still running in the isolate (a loop in a promise
            # callback, say): nothing of this execution survives it.
            manager.__exit__(None, None, None)
        return answer

    @staticmethod
    def keep_warm(racer, memory: int, runs: int) -> bool:
        if runs >= WARM_RUNS or racer.was_hard_memory_limit_reached():
            return False
        used = racer.heap_stats().get("used_heap_size", memory)
        if used > WARM_HEAP_COLLECT:
            racer.low_memory_notification()
            used = racer.heap_stats().get("used_heap_size", memory)
        return used <= memory * WARM_HEAP_SHARE

    def _drive(self, racer, request: dict, deadline: float) -> dict:
        def remaining() -> float:
            left = deadline - time.monotonic()
            if left <= 0:
                raise JSTimeoutException
            return left

        try:
            racer.eval(f"__redrive.start({json.dumps(request['args'])})", timeout_sec=remaining())
            while True:
                # Promise callbacks run between the calls the host makes; step() sees their end.
                state = json.loads(racer.eval("__redrive.step()", timeout_sec=remaining()))
                if racer.was_hard_memory_limit_reached():
                    return {"memory": True}
                if state["done"]:
                    return state
                if state["ran"]:
                    continue
                if state["delay"] is None:
                    return {"done": True, "ok": False, "error": NEVER_SETTLES, "logs": None}
                # Waiting for the next setTimeout to fall due is what the code asked for.
                time.sleep(min(state["delay"] / 1000, remaining()))
        except JSOOMException:
            return {"memory": True}
        except JSTimeoutException:
            if racer.was_hard_memory_limit_reached():
                return {"memory": True}
            return {"timeout": True}

    @staticmethod
    def _logs_after_stop(racer) -> dict | None:
        """The lines logged before a timeout or the memory limit stopped the code, when the
        isolate answers at once (it may still be busy with a loop)."""
        try:
            return json.loads(racer.eval("__redrive.logs()", timeout_sec=0.25))
        except (JSEvalException, MemoryError, ValueError):
            return None


NEVER_SETTLES = {
    "name": "Error",
    "message": "the function returned a promise that can never settle (nothing left to wait for)",
    "stack": "",
}


def _limits(request: dict) -> dict:
    return {
        "log": int(request.get("logLimit", 65536)),
        "line": int(request.get("lineLimit", 8192)),
        "source": USER_SOURCE,
    }


def vm_data() -> int:
    with open("/proc/self/status") as status:
        match = re.search(r"VmData:\s+(\d+) kB", status.read())
    return int(match.group(1)) * 1024 if match else 0


def syntax_error(text: str, offset: int) -> dict:
    """mini-racer's message for code that does not compile: `<name>:<line>: SyntaxError: ...`,
    then the offending line and a caret."""
    first, _, rest = text.partition("\n")
    match = re.match(r"^[^:]*:(\d+): (\w*Error): (.*)$", first)
    if not match:
        return {"name": "SyntaxError", "message": first, "line": None, "source": ""}
    source = "\n".join(rest.split("\n")[:2]).rstrip()
    return {
        "name": match.group(2),
        "message": match.group(3),
        "line": max(int(match.group(1)) - offset, 1),
        "source": source,
    }


def main() -> None:
    host = Host()
    for line in sys.stdin:
        request = json.loads(line)
        answer = host.compile(request) if request["op"] == "compile" else host.run(request)
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
        if request["op"] == "run":
            host.refill(_limits(request))
    # The worker closed our stdin (it stopped, or died). Leave at once: tearing V8 down context by
    # context at interpreter exit only risks a hang, and the kernel frees it all anyway.
    os._exit(0)


if __name__ == "__main__":
    main()
