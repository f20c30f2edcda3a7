"""Run a validated API prompt headless, with ComfyUI's execution semantics and output cache.

Supported semantics (ComfyUI's `execution.py`):

- validation first; any error raises `WorkflowError` (headless treats every error as fatal);
- only nodes feeding an output node (`OUTPUT_NODE = True`, or the `output_nodes` asked for) run,
  in topological order (ties in id order); `FUNCTION` is called on a fresh instance;
- every output travels as a list. A node without `INPUT_IS_LIST` runs once per element of its
  longest input list (shorter lists repeat their last element) and its results are collected
  into lists; `OUTPUT_IS_LIST[i]` outputs are concatenated instead. A node with
  `INPUT_IS_LIST = True` is called once with every input as a list. An empty input list makes a
  list-mapped node run zero times (all its outputs are empty lists);
- a return value is a tuple, or `{"ui": {...}, "result": (...)}`; `ui` dicts of several calls
  are merged key by key (lists concatenated);
- hidden inputs: `UNIQUE_ID` (the node id), `PROMPT` (the prompt), `EXTRA_PNGINFO`
  (`extra_pnginfo` given to `run`, else None); optional inputs are absent when unconnected;
- lazy inputs (`{"lazy": True}` in the input's options) are evaluated only on demand, as
  ComfyUI does: the node's non-lazy inputs run first, then `check_lazy_status` (on the
  instance that will execute, with every input; unevaluated lazy ones are None, unconnected
  optional ones absent, mapped over lists like `FUNCTION`) names the lazy inputs it needs; their
  upstream nodes run and it is asked again until it names no new one. Lazy inputs never asked
  for reach `FUNCTION` as None, and their upstream nodes do not run (a node without
  `check_lazy_status` gets None for every lazy link). Subgraph expansion (`"expand"` results)
  and `ExecutionBlocker` are not supported;
- outputs are cached across `run` calls of one `Executor`, keyed by the node class, its literal
  inputs, the keys of its upstream nodes (with the output index), its `IS_CHANGED` value, and
  its id when it takes `UNIQUE_ID` or sets `NOT_IDEMPOTENT`. `IS_CHANGED` (called on the class
  with the literal inputs) returning NaN — anything unequal to itself — or raising means
  "always re-run". Like ComfyUI's default (classic) cache, only the entries of the latest run
  are kept, so memory stays bounded by one run.
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from .. import comfy_bridge
from .errors import NodeExecutionError, WorkflowError
from .spec import accepted_argument_names, hidden_inputs, input_specs, return_types
from .validate import Plan, plan_prompt
from .workflow import load_workflow, workflow_format

__all__ = ["Executor", "NodeExecutionError", "NodeOutput", "RunResult", "WorkflowError"]


@dataclass
class NodeOutput:
    """What one output node produced.

    `ui`: the node's `ui` dict (e.g. `{"text": [...], "frames": [paths]}`); `result`: one entry
    per RETURN_TYPES output — the value, or a list when the node was mapped over a list or
    declares that output in `OUTPUT_IS_LIST`.
    """

    node_id: str
    class_type: str
    title: str
    ui: dict[str, Any]
    result: tuple


@dataclass
class RunResult:
    """The outcome of `Executor.run`: output nodes (id order), and which nodes ran or came from cache."""

    outputs: list[NodeOutput]
    executed: list[str]
    cached: list[str]
    prompt: dict = field(repr=False)

    def output(self, key: str) -> NodeOutput:
        """An output node by id, title, or class type (the first that matches uniquely)."""
        for attr in ("node_id", "title", "class_type"):
            found = [o for o in self.outputs if getattr(o, attr) == str(key)]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise KeyError(
                    f"{key!r} matches several output nodes: {', '.join(o.node_id for o in found)}"
                )
        raise KeyError(
            f"no output node {key!r}; output nodes: {', '.join(f'{o.node_id} ({o.class_type})' for o in self.outputs)}"
        )


@dataclass
class _Entry:
    outputs: list[list]  # per output index, the list of values
    ui: dict[str, Any]


class _Unique:
    """A cache-key token equal only to itself: makes a node re-run every time (IS_CHANGED NaN)."""

    __slots__ = ()


class Executor:
    """Runs API prompts with the node classes of `node_classes` (`{class_type: class}`).

    `execution_counts[class_type]` counts the node executions (cache hits excluded) over every
    run of this executor. Progress goes to `stream` (stderr) unless `quiet`.
    """

    def __init__(
        self, node_classes: Mapping[str, type], *, quiet: bool = False, stream: TextIO | None = None
    ) -> None:
        self.node_classes = node_classes
        self.quiet = quiet
        self.stream = stream
        self.execution_counts: Counter[str] = Counter()
        self._cache: dict[Any, _Entry] = {}
        self._bar_open = False

    # -- public -----------------------------------------------------------------------------

    def run(
        self,
        prompt: Mapping,
        *,
        output_nodes: Iterable[str] | None = None,
        extra_pnginfo: Any = None,
        source: str | None = None,
    ) -> RunResult:
        """Validate and run `prompt` (API format; a UI-format dict is converted first).

        Raises `WorkflowError` when validation fails (nothing runs) and `NodeExecutionError`
        (naming the node, with the original exception as `__cause__`) when a node raises.
        """
        if isinstance(prompt, Mapping) and workflow_format(prompt) == "ui":
            prompt = load_workflow(prompt, self.node_classes)
        prompt = {str(k): v for k, v in prompt.items()} if isinstance(prompt, Mapping) else prompt
        plan = plan_prompt(prompt, self.node_classes, output_nodes=output_nodes, source=source)
        run = _Run(plan, extra_pnginfo)
        previous_listener = comfy_bridge.progress_listener() if not self.quiet else None
        if not self.quiet:
            comfy_bridge.set_progress_listener(self._on_progress)
        try:
            self._evaluate(run, plan.outputs)
            if run.cached and not self.quiet:
                self._print(f"{len(run.cached)} node(s) unchanged: used cached outputs")
        finally:
            self._close_bar()
            if not self.quiet:
                comfy_bridge.set_progress_listener(previous_listener)
            # Classic cache: keep only this run's entries (those computed before a failure included).
            live = set(run.keys.values())
            for key in [k for k in self._cache if k not in live]:
                del self._cache[key]
        values, executed, cached = run.values, run.executed, run.cached

        outputs = []
        for node_id in plan.outputs:
            node = prompt[node_id]
            cls = self.node_classes[node["class_type"]]
            entry = values[node_id]
            is_list = _output_is_list(cls, len(entry.outputs))
            result = tuple(
                vals if is_list[i] or len(vals) != 1 else vals[0]
                for i, vals in enumerate(entry.outputs)
            )
            outputs.append(
                NodeOutput(
                    node_id, node["class_type"], self._title(prompt, node_id), entry.ui, result
                )
            )
        return RunResult(outputs=outputs, executed=executed, cached=cached, prompt=prompt)

    def clear_cache(self) -> None:
        self._cache.clear()

    # -- demand-driven evaluation ---------------------------------------------------------------

    def _evaluate(self, run: _Run, targets: Iterable[str]) -> None:
        """Run `targets` and what they need through non-lazy links, in plan order."""
        needed: set[str] = set()
        stack = [t for t in targets if t not in run.values]
        while stack:
            node_id = stack.pop()
            if node_id in needed or node_id in run.values:
                continue
            needed.add(node_id)
            lazy = run.lazy_inputs(self.node_classes, node_id)
            stack += [src for name, (src, _) in run.plan.links[node_id].items() if name not in lazy]
        for node_id in run.plan.order:
            if node_id in needed and node_id not in run.values:
                self._run_node(run, node_id)

    def _run_node(self, run: _Run, node_id: str) -> None:
        plan = run.plan
        # Keys are computed as the run goes: a node whose upstream re-ran but produced the
        # same plain value (e.g. the same object list for a new question) stays cached.
        run.keys[node_id] = key = self._cache_key(plan, node_id, run.keys, run.values, run)
        entry = self._cache.get(key)
        if entry is None:
            node = plan.prompt[node_id]
            self._print(
                f"[{run.position[node_id]}/{len(plan.order)}] {self._title(plan.prompt, node_id)} ({node['class_type']})"
            )
            entry = self._execute(run, node_id)
            run.executed.append(node_id)  # in completion order (a lazy node after its branch)
            self._cache[key] = entry
            self.execution_counts[node["class_type"]] += 1
        else:
            run.cached.append(node_id)
        run.values[node_id] = entry

    # -- cache keys ---------------------------------------------------------------------------

    def _cache_key(
        self,
        plan: Plan,
        node_id: str,
        keys: Mapping[str, Any],
        values: Mapping[str, _Entry],
        run: _Run,
    ) -> Any:
        """A node's cache key: its class, literal inputs, IS_CHANGED and its upstream.

        A linked input counts by its value when that value is plain data (strings, numbers,
        ...: cheap to compare), else by the upstream node's own key; a lazy input counts by its
        upstream's static key (from the graph alone), evaluated or not, so that the key does not
        depend on what else ran first.
        """
        class_type = plan.prompt[node_id]["class_type"]
        cls = self.node_classes[class_type]
        literals = plan.literals[node_id]
        identity = node_id if _has_identity(cls, class_type) else None
        linked = []
        lazy = run.lazy_inputs(self.node_classes, node_id)
        for name, (src, slot) in sorted(plan.links[node_id].items()):
            if name in lazy or src not in values:  # lazy: the same key whether evaluated or not
                linked.append((name, ("static", self._static_key(run, src), slot)))
                continue
            outputs = values[src].outputs
            value = outputs[slot] if slot < len(outputs) else None
            linked.append(
                (name, ("value", _freeze(value)) if _is_plain(value) else (keys[src], slot))
            )
        return (
            class_type,
            identity,
            tuple(sorted((k, _freeze(v)) for k, v in literals.items())),
            tuple(linked),
            run.is_changed(self, node_id),
        )

    def _static_key(self, run: _Run, node_id: str) -> Any:
        """A key from the graph alone (class, literals, IS_CHANGED, upstream static keys)."""
        if node_id in run.static_keys:
            return run.static_keys[node_id]
        plan = run.plan
        # Iterative post-order: upstream first (chains may be long).
        stack = [node_id]
        while stack:
            current = stack[-1]
            pending = [
                src
                for src, _ in plan.links[current].values()
                if src not in run.static_keys and src not in stack
            ]
            if pending:
                stack += pending
                continue
            stack.pop()
            if current in run.static_keys:
                continue
            node = plan.prompt[current]
            run.static_keys[current] = (
                node["class_type"],
                current
                if _has_identity(self.node_classes[node["class_type"]], node["class_type"])
                else None,
                tuple(sorted((k, _freeze(v)) for k, v in plan.literals[current].items())),
                tuple(
                    (name, run.static_keys.get(src, ("cycle", src)), slot)
                    for name, (src, slot) in sorted(plan.links[current].items())
                ),
                run.is_changed(self, current),
            )
        return run.static_keys[node_id]

    @staticmethod
    def _is_changed(
        cls: type, literals: dict, node_id: str, prompt: dict, hidden: dict[str, str]
    ) -> Any:
        fn = getattr(cls, "IS_CHANGED", None)
        if fn is None:
            return None
        names, takes_kwargs = accepted_argument_names(fn)
        kwargs = {k: v for k, v in literals.items() if takes_kwargs or k in names}
        for arg, kind in hidden.items():
            if takes_kwargs or arg in names:
                kwargs[arg] = (
                    node_id if kind == "UNIQUE_ID" else prompt if kind == "PROMPT" else None
                )
        try:
            value = fn(**kwargs)
        except Exception:  # ComfyUI treats a failing IS_CHANGED as "changed"
            return _Unique()
        if _unequal_to_itself(value):
            return _Unique()
        return _freeze(value)

    # -- execution -----------------------------------------------------------------------------

    def _execute(self, run: _Run, node_id: str) -> _Entry:
        plan = run.plan
        values = run.values
        prompt = plan.prompt
        class_type = prompt[node_id]["class_type"]
        cls = self.node_classes[class_type]
        title = self._title(prompt, node_id)
        try:
            declared = input_specs(cls, class_type)
            lazy = run.lazy_inputs(self.node_classes, node_id)
            args: dict[str, list] = {
                name: [value] for name, value in plan.literals[node_id].items()
            }
            missing: dict[str, str] = {}  # lazy input -> upstream node, not evaluated yet
            for name, (src, slot) in plan.links[node_id].items():
                if name in lazy and src not in values:
                    missing[name] = src
                    args[name] = [None]
                else:
                    args[name] = _upstream(values, name, src, slot)
            args = {k: v for k, v in args.items() if k in declared}
            for arg, kind in hidden_inputs(cls, class_type).items():
                if kind == "UNIQUE_ID":
                    args[arg] = [node_id]
                elif kind == "PROMPT":
                    args[arg] = [prompt]
                elif kind == "EXTRA_PNGINFO":
                    args[arg] = [run.extra_pnginfo]
            instance = cls()
            check = getattr(instance, "check_lazy_status", None)
            while check is not None:  # ComfyUI asks even when no lazy input is missing
                names, takes_kwargs = accepted_argument_names(check)
                check_args = {k: v for k, v in args.items() if takes_kwargs or k in names}
                asked = _map_over_lists(
                    check, check_args, bool(getattr(cls, "INPUT_IS_LIST", False))
                )
                wanted = [
                    n
                    for r in asked
                    if isinstance(r, (list, tuple))
                    for n in r
                    if isinstance(n, str) and n in missing
                ]
                if not wanted:
                    break
                self._evaluate(run, [missing[n] for n in wanted])
                for n in dict.fromkeys(wanted):
                    src, slot = plan.links[node_id][n]
                    args[n] = _upstream(values, n, src, slot)
                    del missing[n]
            function = getattr(instance, cls.FUNCTION)
            returned = _map_over_lists(function, args, bool(getattr(cls, "INPUT_IS_LIST", False)))
            return _collect(cls, returned)
        except NodeExecutionError:
            raise
        except Exception as exc:
            raise NodeExecutionError(node_id, class_type, title, exc) from exc

    # -- progress -----------------------------------------------------------------------------

    @staticmethod
    def _title(prompt: Mapping, node_id: str) -> str:
        node = prompt[node_id]
        return str((node.get("_meta") or {}).get("title") or node["class_type"])

    def _out(self) -> TextIO:
        return self.stream or sys.stderr

    def _print(self, line: str) -> None:
        if self.quiet:
            return
        self._close_bar()
        print(line, file=self._out(), flush=True)

    def _on_progress(self, description: str, done: int, total: int) -> None:
        """Relay `comfy_bridge.Progress` updates as one bar redrawn in place (a line per 10% when not a terminal)."""
        out = self._out()
        width = 30
        filled = int(width * done / max(total, 1))
        text = f"    {description or 'progress'} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}"
        if getattr(out, "isatty", lambda: False)():
            out.write("\r" + text)
            self._bar_open = done < total
            if done >= total:
                out.write("\n")
            out.flush()
        elif done == total or (10 * done) // max(total, 1) != (10 * (done - 1)) // max(total, 1):
            print(text, file=out, flush=True)

    def _close_bar(self) -> None:
        if self._bar_open:
            self._out().write("\n")
            self._bar_open = False


class _Run:
    """The state of one `Executor.run`: evaluated nodes, their keys, and what ran."""

    def __init__(self, plan: Plan, extra_pnginfo: Any) -> None:
        self.plan = plan
        self.extra_pnginfo = extra_pnginfo
        self.position = {node_id: i for i, node_id in enumerate(plan.order, 1)}
        self.keys: dict[str, Any] = {}
        self.static_keys: dict[str, Any] = {}
        self.values: dict[str, _Entry] = {}
        self.executed: list[str] = []
        self.cached: list[str] = []
        self._lazy: dict[str, frozenset[str]] = {}
        self._changed: dict[str, Any] = {}

    def lazy_inputs(self, node_classes: Mapping[str, type], node_id: str) -> frozenset[str]:
        """The node's linked inputs declared `{"lazy": True}`."""
        if node_id not in self._lazy:
            class_type = self.plan.prompt[node_id]["class_type"]
            specs = input_specs(node_classes[class_type], class_type)
            self._lazy[node_id] = frozenset(
                name
                for name in self.plan.links[node_id]
                if name in specs and specs[name].options.get("lazy") is True
            )
        return self._lazy[node_id]

    def is_changed(self, executor: Executor, node_id: str) -> Any:
        """IS_CHANGED, called once per node and run."""
        if node_id not in self._changed:
            class_type = self.plan.prompt[node_id]["class_type"]
            cls = executor.node_classes[class_type]
            self._changed[node_id] = executor._is_changed(
                cls,
                self.plan.literals[node_id],
                node_id,
                self.plan.prompt,
                hidden_inputs(cls, class_type),
            )
        return self._changed[node_id]


def _has_identity(cls: type, class_type: str) -> bool:
    """Whether the node's cache key includes its id (it takes UNIQUE_ID or is NOT_IDEMPOTENT)."""
    return "UNIQUE_ID" in hidden_inputs(cls, class_type).values() or bool(
        getattr(cls, "NOT_IDEMPOTENT", False)
    )


def _upstream(values: Mapping[str, _Entry], name: str, src: str, slot: int) -> list:
    upstream = values[src].outputs
    if slot >= len(upstream):
        raise RuntimeError(
            f"input '{name}' needs output {slot} of node {src}, which returned only {len(upstream)} value(s)"
        )
    return upstream[slot]


def _map_over_lists(function: Any, args: dict[str, list], input_is_list: bool) -> list[Any]:
    """ComfyUI's map-over-lists: one call with whole lists, or one call per element of the longest list."""
    if input_is_list:
        return [function(**args)]
    if not args:
        return [function()]
    if any(len(v) == 0 for v in args.values()):
        return []
    longest = max(len(v) for v in args.values())
    return [
        function(**{k: v[i] if i < len(v) else v[-1] for k, v in args.items()})
        for i in range(longest)
    ]


def _collect(cls: type, returned: list[Any]) -> _Entry:
    """Merge the per-call returns into per-output lists and one ui dict."""
    n_out = len(return_types(cls))
    results: list[tuple] = []
    uis: list[Mapping] = []
    for r in returned:
        if isinstance(r, Mapping):
            if "expand" in r:
                raise RuntimeError(
                    "returned a subgraph expansion ('expand'), which the headless engine does not support"
                )
            if r.get("ui") is not None:
                if not isinstance(r["ui"], Mapping):
                    raise TypeError(f"'ui' must be a dict, got {type(r['ui']).__name__}")
                uis.append(r["ui"])
            r = r.get("result", () if n_out == 0 else None)
        if r is None and n_out == 0:
            r = ()
        if not isinstance(r, (tuple, list)):
            raise TypeError(
                f"must return a tuple of {n_out} value(s) (RETURN_TYPES), got {type(r).__name__}"
            )
        if len(r) != n_out:
            raise TypeError(f"returned {len(r)} value(s) but RETURN_TYPES declares {n_out}")
        results.append(tuple(r))
    is_list = _output_is_list(cls, n_out)
    outputs: list[list] = []
    for i in range(n_out):
        if is_list[i]:
            merged: list = []
            for r in results:
                if not isinstance(r[i], (list, tuple)):
                    raise TypeError(
                        f"output {i} is declared OUTPUT_IS_LIST but a {type(r[i]).__name__} was returned"
                    )
                merged.extend(r[i])
            outputs.append(merged)
        else:
            outputs.append([r[i] for r in results])
    if len(uis) == 1:
        ui = dict(uis[0])
    else:
        ui = {}
        for u in uis:
            for k, v in u.items():
                ui.setdefault(k, []).extend(v if isinstance(v, (list, tuple)) else [v])
    return _Entry(outputs, ui)


def _output_is_list(cls: type, n: int) -> list[bool]:
    flags = list(getattr(cls, "OUTPUT_IS_LIST", ()) or ())
    return [bool(flags[i]) if i < len(flags) else False for i in range(n)]


def _is_plain(value: Any, depth: int = 0) -> bool:
    """Plain data (str, numbers, bools, None and short lists/tuples/dicts of them)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return True
    if depth < 3 and isinstance(value, (list, tuple)) and len(value) <= 64:
        return all(_is_plain(v, depth + 1) for v in value)
    if depth < 3 and isinstance(value, dict) and len(value) <= 64:
        return all(isinstance(k, str) and _is_plain(v, depth + 1) for k, v in value.items())
    return False


def _unequal_to_itself(value: Any) -> bool:
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, (list, tuple)):
        return any(_unequal_to_itself(v) for v in value)
    try:
        return bool(value != value)
    except Exception:  # e.g. a tensor: ambiguous truth value; treat as a changing value
        return True


def _freeze(value: Any) -> Any:
    """A hashable stand-in for a JSON-like value (lists -> tuples, dicts -> sorted pairs)."""
    if isinstance(value, Mapping):
        return ("__dict__", tuple(sorted((str(k), _freeze(v)) for k, v in value.items())))
    if isinstance(value, (list, tuple)):
        return ("__list__", tuple(_freeze(v) for v in value))
    if isinstance(value, (set, frozenset)):
        return ("__set__", tuple(sorted(repr(v) for v in value)))
    try:
        hash(value)
    except TypeError:
        return ("__repr__", repr(value))
    return (type(value).__name__, value)
