"""Runs ROS 2 YAML launch files (the subset in launch/) without ROS: `sim2real launch FILE name:=value`."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import DEVNULL, PIPE
from typing import IO, Any

import yaml

USAGE = """usage: sim2real launch FILE [name:=value ...] [--print]

Runs a ROS 2 YAML launch file without ROS (`ros2 launch FILE name:=value` runs the same file with ROS 2).
--print shows the resolved processes without starting them. Ctrl-C stops them all: SIGINT, then SIGTERM after
5 s, then SIGKILL after 5 s more."""


class LaunchError(Exception):
    """A launch file that cannot run; the message names the file, the action and the attribute."""


@dataclass(frozen=True)
class Process:
    """One process that an `executable` or `node` action resolves to."""

    name: str
    """Label of its output lines: `name` (executable) or `exec_name` (node), else the basename of argv[0]."""
    argv: tuple[str, ...]
    """The command line; argv[0] is looked up on the PATH of `env` when it holds no '/'."""
    env: dict[str, str] = field(repr=False)
    """The whole environment: the runner's, then `set_env` actions in scope, then the action's `env` children."""
    cwd: str | None
    """Working directory (`cwd`), None: the runner's."""
    output: str
    """`screen`, `log` or `both`; this runner shows stdout and stderr on the screen for all three."""


@dataclass(frozen=True)
class LaunchPlan:
    """A launch file resolved into the processes it starts, in declaration order."""

    file: Path
    args: dict[str, str]
    """The top-level file's declared arguments and the values they resolved to."""
    processes: tuple[Process, ...]


# ---- substitutions: the `$(name arg ...)` grammar of ros2/launch's frontend (launch/frontend/grammar.lark)


@dataclass(frozen=True)
class _Subst:
    name: str
    args: tuple[tuple[str | _Subst, ...], ...]


_Template = tuple[str | _Subst, ...]
_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_KNOWN_SUBST = {"var": (1, 1), "env": (1, 2), "dirname": (0, 0), "find-exec": (1, 1)}


def _parse_parts(text: str, i: int, stop: str) -> tuple[_Template, int]:
    """Text with `$(...)` substitutions up to a `stop` character; a backslash escapes the next one, as in launch."""
    parts: list[str | _Subst] = []
    buf: list[str] = []
    while i < len(text) and text[i] not in stop:
        if text[i] == "\\" and i + 1 < len(text):
            buf.append(text[i + 1])
            i += 2
        elif text.startswith("$(", i):
            if buf:
                parts.append("".join(buf))
                buf = []
            sub, i = _parse_subst(text, i)
            parts.append(sub)
        elif stop == " )" and text[i] in "'\"(":
            raise ValueError(f"unexpected {text[i]!r} in a substitution argument (quote the whole argument)")
        else:
            buf.append(text[i])
            i += 1
    if buf:
        parts.append("".join(buf))
    return tuple(parts), i


def _parse_subst(text: str, i: int) -> tuple[_Subst, int]:
    m = _IDENT.match(text, i + 2)
    if not m:
        raise ValueError(f"expected a substitution name after '$(' in {text!r}")
    name, i, args = m.group(), m.end(), []
    while i < len(text) and text[i] == " ":
        if i + 1 < len(text) and text[i + 1] in "'\"":
            quote = text[i + 1]
            value, i = _parse_parts(text, i + 2, stop=quote)
            if i >= len(text):
                raise ValueError(f"unterminated {quote} in $({name} ...)")
            i += 1
        else:
            value, i = _parse_parts(text, i + 1, stop=" )")
            if not value:
                raise ValueError(f"empty argument in $({name} ...) (write '' for an empty string)")
        args.append(value)
    if i >= len(text) or text[i] != ")":
        raise ValueError(f"unterminated $({name} ...) in {text!r}")
    return _Subst(name, tuple(args)), i + 1


# ---- the parse: actions in order, with launch configurations (`var`) and environment scoped like ros2/launch


@dataclass
class _Scope:
    vars: dict[str, str]
    env: dict[str, str]

    def copy(self) -> _Scope:
        return _Scope(dict(self.vars), dict(self.env))


class _Entity:
    """One action (or child entry such as `env`, `param`) of one file, with checked attribute access."""

    def __init__(self, file: Path, kind: str, at: str, body: Any, allowed: set[str], scope: _Scope) -> None:
        self.file, self.kind, self.at, self.scope = file, kind, at, scope
        if not isinstance(body, dict):
            raise self.error(None, f"expected a mapping of attributes, got {type(body).__name__}")
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise self.error(unknown[0], f"unknown attribute; supported: {', '.join(sorted(allowed))}")
        self.body = body

    def error(self, attr: str | None, msg: str) -> LaunchError:
        named = f", attribute '{attr}'" if attr else ""
        return LaunchError(f"{self.file}: action '{self.kind}' ({self.at}){named}: {msg}")

    def template(self, attr: str, required: bool = False) -> _Template | None:
        if attr not in self.body:
            if required:
                raise self.error(attr, "missing (required)")
            return None
        value = self.body[attr]
        if not isinstance(value, str):
            raise self.error(attr, f"expected a string, got {type(value).__name__} {value!r} (quote it in YAML)")
        try:
            return _parse_parts(value, 0, stop="")[0]
        except ValueError as e:
            raise self.error(attr, str(e)) from None

    def text(self, attr: str, required: bool = False) -> str | None:
        tpl = self.template(attr, required)
        return None if tpl is None else self.resolve(tpl, attr)

    def req(self, attr: str) -> str:
        return self.resolve(self.template(attr, required=True) or (), attr)

    def resolve(self, tpl: _Template, attr: str) -> str:
        return "".join(p if isinstance(p, str) else self._evaluate(p, attr) for p in tpl)

    def _evaluate(self, sub: _Subst, attr: str) -> str:
        if sub.name not in _KNOWN_SUBST:
            raise self.error(attr, f"unknown substitution $({sub.name} ...); supported: {', '.join(_KNOWN_SUBST)}")
        low, high = _KNOWN_SUBST[sub.name]
        if not low <= len(sub.args) <= high:
            raise self.error(attr, f"$({sub.name}) takes {low}..{high} arguments, got {len(sub.args)}")
        args = [self.resolve(a, attr) for a in sub.args]
        if sub.name == "var":
            if args[0] not in self.scope.vars:
                known = ", ".join(sorted(self.scope.vars)) or "none"
                raise self.error(attr, f"$(var {args[0]}): no launch argument or let of that name (known: {known})")
            return self.scope.vars[args[0]]
        if sub.name == "env":
            value = self.scope.env.get(args[0], args[1] if len(args) == 2 else None)
            if value is None:
                raise self.error(attr, f"$(env {args[0]}): environment variable not set and no default given")
            return value
        if sub.name == "dirname":
            return str(self.file.resolve().parent)
        found = shutil.which(args[0], path=self.scope.env.get("PATH", os.defpath))
        if found is None:
            raise self.error(attr, f"$(find-exec {args[0]}): not found on PATH")
        return found

    def cmdline(self, attr: str, required: bool = False) -> list[str] | None:
        """Split like launch's ExecuteProcess._parse_cmdline: text is shlex-split, a substitution stays one
        argument (glued to text it touches), even when its value holds spaces or is empty."""
        tpl = self.template(attr, required)
        if tpl is None:
            return None
        out: list[list[str]] = []
        cur: list[str] = []
        for part in tpl:
            if isinstance(part, _Subst):
                cur.append(self._evaluate(part, attr))
                continue
            try:
                tokens = shlex.split(part)
            except ValueError as e:
                raise self.error(attr, f"{e} in {part!r}") from None
            if cur and (not tokens or part[0].isspace()):
                out, cur = [*out, cur], []
            if tokens:
                cur.append(tokens[0])
                if len(tokens) > 1:
                    out += [cur, *([t] for t in tokens[1:-1])]
                    cur = [tokens[-1]]
                if part[-1].isspace():
                    out, cur = [*out, cur], []
        if cur:
            out.append(cur)
        return ["".join(pieces) for pieces in out]

    def flag(self, attr: str, default: bool) -> bool:
        value = self.body.get(attr, default)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise self.error(attr, f"expected true or false, got {value!r}")
        return value

    def children(self, attr: str, allowed: set[str]) -> list[_Entity]:
        items = self.body.get(attr, [])
        if not isinstance(items, list):
            raise self.error(attr, f"expected a list of mappings, got {type(items).__name__}")
        kind = f"{self.kind} {attr}"
        return [
            _Entity(self.file, kind, f"{self.at}.{attr}[{i}]", it, allowed, self.scope) for i, it in enumerate(items)
        ]


_ATTRS = {
    "arg": {"name", "default", "description"},
    "let": {"name", "value"},
    "set_env": {"name", "value"},
    "push-ros-namespace": {"namespace"},
    "executable": {"cmd", "cwd", "name", "output", "env"},
    "node": {"exec", "exec_name", "name", "namespace", "args", "ros_args", "param", "remap", "output", "cwd", "env"},
    "include": {"file", "arg"},
    "group": {"scoped", "forwarding", "keep", "children"},
}
_OUTPUTS = ("screen", "log", "both")
#: launch's IfCondition / UnlessCondition, accepted on every action: "true"/"1" or "false"/"0" (any case).
_CONDITIONS = {"if", "unless"}


def _skipped(e: _Entity) -> bool:
    """True when the action's `if` is false or its `unless` is true (as launch.conditions evaluates them)."""
    skip = False
    for attr in ("if", "unless"):
        text = e.text(attr)
        if text is None:
            continue
        value = text.strip().lower()
        if value not in ("true", "1", "false", "0"):
            raise e.error(attr, f"a condition must be true, false, 1 or 0, got {text!r}")
        truth = value in ("true", "1")
        skip = skip or (not truth if attr == "if" else truth)
    return skip


def _load(path: Path, origin: str = "") -> list[Any]:
    try:
        text = path.read_text()
    except OSError as e:
        raise LaunchError(f"{origin}cannot read launch file {path}: {e.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise LaunchError(f"{path}: YAML syntax error: {e}") from None
    if not isinstance(data, dict) or list(data) != ["launch"] or not isinstance(data["launch"], list):
        raise LaunchError(f"{path}: expected one top-level key 'launch' holding a list of actions")
    return data["launch"]


def _declared(entries: list[Any]) -> list[tuple[str, bool, str]]:
    """(name, required, description) of the `arg` actions in a file, groups included, includes not."""
    found: list[tuple[str, bool, str]] = []
    for item in entries:
        if not isinstance(item, dict) or len(item) != 1:
            continue
        ((kind, body),) = item.items()
        if not isinstance(body, dict):
            continue
        if kind == "arg" and isinstance(body.get("name"), str):
            found.append((body["name"], "default" not in body, str(body.get("description", ""))))
        elif kind == "group" and isinstance(body.get("children"), list):
            found += _declared(body["children"])
    return found


def _prefix_namespace(base: str | None, ns: str | None) -> str | None:
    """launch_ros.utilities.prefix_namespace: a relative `ns` goes under `base`; the result is absolute."""
    if base is None and ns is None:
        return None
    combined = base if ns is None else ns if not base or ns.startswith("/") else f"{base.rstrip('/')}/{ns}"
    combined = combined or ""
    if combined != "/":
        combined = combined.rstrip("/")
    return combined if combined.startswith("/") else "/" + combined


def _param_value(value: Any, entity: _Entity) -> str:
    """A `param` value as `-p name:=VALUE` text; the node reads it as YAML, so '1.5' is a double, 'true' a bool."""
    if isinstance(value, str):
        text = entity.resolve(entity.template("value") or (), "value")
        return text if text else "''"  # rcl refuses `name:=`; an empty YAML string is `''`
    if isinstance(value, (bool, int, float, list)):
        return yaml.safe_dump(value, default_flow_style=True, width=1 << 30).strip().removesuffix("...").strip()
    raise entity.error("value", f"expected a string, number, bool or list, got {type(value).__name__}")


class _Parser:
    def __init__(self, cli_args: dict[str, str]) -> None:
        self.base_env = dict(os.environ)
        self.processes: list[Process] = []
        self.declared: set[str] = set()
        self.root_args: dict[str, str] = {}
        self.stack: list[Path] = []
        self.cli_args = cli_args

    def file(self, path: Path, entries: list[Any], scope: _Scope) -> None:
        self.stack.append(path.resolve())
        self.declared.update(name for name, _, _ in _declared(entries))
        self.actions(path, entries, scope, "launch")
        self.stack.pop()

    def actions(self, file: Path, items: list[Any], scope: _Scope, where: str) -> None:
        for i, item in enumerate(items):
            at = f"{where}[{i}]"
            if not isinstance(item, dict) or len(item) != 1:
                raise LaunchError(f"{file}: {at}: each action is a mapping with one key, e.g. '- executable: {{...}}'")
            ((kind, body),) = item.items()
            if kind not in _ATTRS:
                raise LaunchError(f"{file}: {at}: unknown action '{kind}'; supported: {', '.join(_ATTRS)}")
            if kind == "node" and isinstance(body, dict) and "pkg" in body:
                raise LaunchError(
                    f"{file}: action 'node' ({at}), attribute 'pkg': packages need a ROS 2 install; "
                    "give `exec` an executable on PATH instead"
                )
            entity = _Entity(file, kind, at, body, _ATTRS[kind] | _CONDITIONS, scope)
            if _skipped(entity):
                continue
            getattr(self, "do_" + kind.replace("-", "_"))(entity, scope)

    def do_arg(self, e: _Entity, scope: _Scope) -> None:
        name = e.req("name")
        self.declared.add(name)
        if name not in scope.vars:
            default = e.text("default")
            if default is None:
                raise e.error("name", f"required argument '{name}' was not given (pass {name}:=VALUE)")
            scope.vars[name] = default
        e.template("description")
        if e.file.resolve() == self.stack[0]:
            self.root_args[name] = scope.vars[name]

    def do_let(self, e: _Entity, scope: _Scope) -> None:
        scope.vars[e.req("name")] = e.req("value")

    def do_set_env(self, e: _Entity, scope: _Scope) -> None:
        scope.env[e.req("name")] = e.req("value")

    def do_push_ros_namespace(self, e: _Entity, scope: _Scope) -> None:
        scope.vars["ros_namespace"] = _prefix_namespace(scope.vars.get("ros_namespace"), e.req("namespace")) or "/"

    def do_executable(self, e: _Entity, scope: _Scope) -> None:
        argv = e.cmdline("cmd", required=True) or []
        if not argv:
            raise e.error("cmd", "is empty")
        self.add(e, scope, argv, e.text("name") or os.path.basename(argv[0]))

    def do_node(self, e: _Entity, scope: _Scope) -> None:
        """argv as launch_ros.actions.Node builds it: exec, args, [--ros-args ros_args], then --ros-args with
        -r __node:=, -r __ns:=, each param (-p / --params-file) and each remap (-r from:=to), in that order."""
        exe = e.req("exec")
        argv = [exe, *(e.cmdline("args") or [])]
        ros_args = e.cmdline("ros_args")
        if ros_args is not None:
            argv += ["--ros-args", *ros_args]
        argv.append("--ros-args")
        name = e.text("name")
        if name is not None:
            argv += ["-r", f"__node:={name}"]
        ns = _prefix_namespace(scope.vars.get("ros_namespace"), e.text("namespace"))
        if ns is not None:
            argv += ["-r", f"__ns:={ns}"]
        for p in e.children("param", {"name", "value", "from"}):
            if "from" in p.body:
                if set(p.body) != {"from"}:
                    raise p.error("from", "'from' (a parameters file) takes no other attributes")
                path = p.req("from")
                if not Path(path).is_file():
                    raise p.error("from", f"parameters file {path} not found")
                argv += ["--params-file", path]
            else:
                if "value" not in p.body:
                    raise p.error("value", "missing (a param needs name and value, or from)")
                argv += ["-p", f"{p.req('name')}:={_param_value(p.body['value'], p)}"]
        for r in e.children("remap", {"from", "to"}):
            argv += ["-r", f"{r.req('from')}:={r.req('to')}"]
        self.add(e, scope, argv, e.text("exec_name") or os.path.basename(exe))

    def add(self, e: _Entity, scope: _Scope, argv: list[str], name: str) -> None:
        env = dict(scope.env)
        for c in e.children("env", {"name", "value"}):
            env[c.req("name")] = c.req("value")
        output = e.text("output") or "log"
        if output not in _OUTPUTS:
            raise e.error("output", f"expected one of {', '.join(_OUTPUTS)}, got {output!r}")
        self.processes.append(Process(name=name, argv=tuple(argv), env=env, cwd=e.text("cwd"), output=output))

    def do_include(self, e: _Entity, scope: _Scope) -> None:
        """Like launch's IncludeLaunchDescription: not scoped (its args and lets stay set afterwards; wrap it in a
        `group` to scope it), a relative `file` is relative to the working directory (use $(dirname)/...)."""
        target = Path(e.req("file"))
        if not target.is_file():
            raise e.error("file", f"included launch file {target} not found")
        if target.resolve() in self.stack:
            raise e.error("file", f"{target} includes itself (through {' -> '.join(map(str, self.stack))})")
        given = [(a.req("name"), a.req("value")) for a in e.children("arg", {"name", "value"})]
        entries = _load(target, origin=f"{e.file}: action 'include': ")
        names = {n for n, _ in given}
        missing = [f"{n} ({d})" if d else n for n, req, d in _declared(entries) if req and n not in names]
        if missing:
            raise e.error("arg", f"{target} needs argument(s) {', '.join(missing)}; give them as `arg` entries")
        scope.vars.update(given)
        self.file(target, entries, scope)

    def do_group(self, e: _Entity, scope: _Scope) -> None:
        """Like launch's GroupAction: scoped (default) keeps its lets, set_env and namespace inside; forwarding
        (default) starts from the outer values, forwarding: false from only the `keep` entries."""
        keep = {k.req("name"): k.req("value") for k in e.children("keep", {"name", "value"})}
        children = e.body.get("children")
        if not isinstance(children, list):
            raise e.error("children", "expected a list of actions")
        if not e.flag("scoped", True):
            inner = scope
        elif e.flag("forwarding", True):
            inner = scope.copy()
        else:
            inner = _Scope({}, dict(self.base_env))
        inner.vars.update(keep)
        self.actions(e.file, children, inner, f"{e.at}.group.children")


def parse_launch(path: str | os.PathLike[str], args: dict[str, str]) -> LaunchPlan:
    """Resolve a YAML launch file with `args` (the command line's name:=value) into the processes it starts.

    Stricter than `ros2 launch`: unknown actions, attributes and substitutions are errors (ros2 launch also rejects
    those), and so are command-line args that no `arg` of the file or of a file it includes declares (ros2 launch
    ignores them silently). Every required argument (no default) missing from `args` is listed in one error.
    """
    file = Path(path)
    entries = _load(file)
    missing = [f"{n} ({d})" if d else n for n, req, d in _declared(entries) if req and n not in args]
    if missing:
        raise LaunchError(f"{file}: missing required argument(s): {', '.join(missing)}; pass them as name:=value")
    parser = _Parser(args)
    parser.file(file, entries, _Scope(dict(args), dict(parser.base_env)))
    unknown = sorted(set(args) - parser.declared)
    if unknown:
        raise LaunchError(
            f"{file}: argument(s) {', '.join(unknown)} not declared by the launch file; "
            f"declared: {', '.join(sorted(parser.declared)) or 'none'}"
        )
    return LaunchPlan(file=file, args=parser.root_args, processes=tuple(parser.processes))


def format_plan(plan: LaunchPlan) -> str:
    """The resolved plan as text: args, then per process its label, command line, cwd and changed environment."""
    lines = [f"{plan.file}", "  args: " + (" ".join(f"{k}:={v}" for k, v in plan.args.items()) or "none")]
    for i, p in enumerate(plan.processes, 1):
        lines.append(f"  [{p.name}-{i}] {shlex.join(p.argv)}")
        if p.cwd:
            lines.append(f"      cwd: {p.cwd}")
        changed = [f"{k}={shlex.quote(v)}" for k, v in p.env.items() if os.environ.get(k) != v]
        if changed:
            lines.append("      env: " + " ".join(changed))
    return "\n".join(lines)


# ---- running


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _pump(stream: IO[bytes] | None, label: str, to_stderr: bool, lock: threading.Lock) -> None:
    """Copy a child's output line by line as `[label] line`, like ros2 launch's output format."""
    assert stream is not None
    for raw in iter(stream.readline, b""):
        line = raw.decode(errors="replace").rstrip("\r\n")
        out = sys.stderr if to_stderr else sys.stdout
        with lock:
            out.write(f"[{label}] {line}\n")
            out.flush()
    stream.close()


def _exit_code(returncode: int) -> int:
    """A child killed by signal N counts as 128 + N, as a shell reports it."""
    return 128 - returncode if returncode < 0 else returncode


@dataclass
class _Child:
    label: str
    process: Process
    popen: subprocess.Popen[bytes]
    pumps: list[threading.Thread]
    code: int | None = None


def _start(label: str, p: Process, lock: threading.Lock) -> _Child:
    # start_new_session: its own process group, so signals reach the process and the processes it starts
    popen = subprocess.Popen(
        p.argv, env=p.env, cwd=p.cwd, stdin=DEVNULL, stdout=PIPE, stderr=PIPE, start_new_session=True
    )
    pumps = [threading.Thread(target=_pump, args=(popen.stdout, label, False, lock), daemon=True)]
    pumps.append(threading.Thread(target=_pump, args=(popen.stderr, label, True, lock), daemon=True))
    for t in pumps:
        t.start()
    _log(f"[INFO] [{label}]: process started with pid [{popen.pid}]")
    return _Child(label, p, popen, pumps)


def run(plan: LaunchPlan, sigterm_timeout_s: float = 5.0, sigkill_timeout_s: float = 5.0) -> int:
    """Start every process (each in its own process group), stream their output as `[name-N] line`, and wait.

    When a process exits non-zero, or the runner gets SIGINT or SIGTERM, the others are shut down as ros2 launch
    does: SIGINT, SIGTERM after `sigterm_timeout_s`, SIGKILL after a further `sigkill_timeout_s` (signals go to the
    process group). A process that exits 0 leaves the others running; the runner returns once all have exited.
    Returns 0 if every process exited 0, else the first non-zero exit code seen (128 + N for death by signal N).
    """
    for p in plan.processes:
        exe = os.path.join(p.cwd or "", p.argv[0]) if "/" in p.argv[0] else p.argv[0]
        if shutil.which(exe, path=p.env.get("PATH", os.defpath)) is None:
            raise LaunchError(f"{plan.file}: process '{p.name}': executable {p.argv[0]!r} not found on PATH")
    requested: list[int] = []
    handlers: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            handlers[sig] = signal.signal(sig, lambda signum, frame: requested.append(signum))
    lock = threading.Lock()
    children: list[_Child] = []
    first_failure = 0
    escalation = [
        (0.0, signal.SIGINT),
        (sigterm_timeout_s, signal.SIGTERM),
        (sigterm_timeout_s + sigkill_timeout_s, signal.SIGKILL),
    ]
    try:
        for i, p in enumerate(plan.processes, 1):
            if requested:
                break
            try:
                children.append(_start(f"{p.name}-{i}", p, lock))
            except OSError as e:
                _log(f"[ERROR] [{p.name}-{i}]: cannot start {p.argv[0]}: {e}")
                first_failure = 127
                break
        shutdown_at: float | None = None
        stage = 0
        while any(c.code is None for c in children):
            for c in children:
                if c.code is not None or (rc := c.popen.poll()) is None:
                    continue
                for t in c.pumps:
                    t.join(timeout=1.0)
                c.code = _exit_code(rc)
                if rc == 0:
                    _log(f"[INFO] [{c.label}]: process has finished cleanly [pid {c.popen.pid}]")
                else:
                    cmd = shlex.join(c.process.argv)
                    _log(f"[ERROR] [{c.label}]: process has died [pid {c.popen.pid}, exit code {rc}, cmd '{cmd}']")
                    first_failure = first_failure or c.code
            if shutdown_at is None and (first_failure or requested):
                shutdown_at = time.monotonic()
                if requested:
                    _log(f"[WARNING] [launch]: got {signal.Signals(requested[0]).name}, shutting down")
            while shutdown_at is not None and stage < 3 and time.monotonic() - shutdown_at >= escalation[stage][0]:
                for c in children:
                    if c.code is None and c.popen.poll() is None:
                        _log(f"[WARNING] [{c.label}]: sending signal '{escalation[stage][1].name}'")
                        with contextlib.suppress(ProcessLookupError, PermissionError):
                            os.killpg(c.popen.pid, escalation[stage][1])  # not reaped yet: its group id is its pid
                stage += 1
            time.sleep(0.02)
    finally:
        for signum, old in handlers.items():
            signal.signal(signum, old)
    return first_failure


def main(argv: list[str] | None = None) -> int:
    """`sim2real launch FILE [name:=value ...] [--print]`: run (or with --print show) a YAML launch file.

    Errors in the file or the arguments print one message on stderr and return 2; otherwise the exit code is
    run()'s: 0 if every process exited 0, else the first non-zero exit code.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        return 0
    show = any(a in ("--print", "-p") for a in argv)
    rest = [a for a in argv if a not in ("--print", "-p")]
    bad = [a for a in rest[1:] if ":=" not in a or a.startswith((":", "-"))]
    if not rest or rest[0].startswith("-") or bad:
        print(f"sim2real launch: expected FILE [name:=value ...] [--print], got {argv}", file=sys.stderr)
        return 2
    args = dict(a.split(":=", 1) for a in rest[1:])
    try:
        plan = parse_launch(rest[0], args)
        if show:
            print(format_plan(plan))
            return 0
        return run(plan)
    except LaunchError as e:
        print(f"sim2real launch: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
