"""Who calls whom in the rendered files: the path from a server's main() to the application.

The index of the book starts each server's reading at the line that calls the
application, and shows how control gets there. That path is found here, in the code
as it is, across modules: a method inherited from a class of another file
(`class Exchange(pep3333.Response)` calling `self.run_application`), a function
reached through a module alias (`common.load_app`) or an imported name.

A reference counts only where the code says which function it is: `self.name` in a
method (looked up in the class and its bases), `Worker(...).run()`, `cycle.run` after
`cycle = RequestCycle(...)`, `self.pool.submit` after `self.pool = Pool(...)`, a
function or class by name (calling a class reaches its `__init__`), and a function
handed on without being called (a thread's target). Nothing is guessed from a method
name alone: `runner.run()` is asyncio's, not ours.
"""

from __future__ import annotations

import ast
from collections import deque

Node = tuple[str, str]   # (module name, qualified name): ("servers.http11", "ServerConnection.receive")

APPLICATION_NAMES = {"app", "application"}
SPAWN_NAMES = {"Popen", "posix_spawn", "create_subprocess_exec", "spawnv", "spawnve"}


def functions_of(tree: ast.Module) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    """Top-level functions and the methods of top-level classes, by qualified name."""
    found = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found[node.name] = node
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    found[f"{node.name}.{item.name}"] = item
    return found


def called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def calls_named(tree: ast.Module, names: set[str], min_args: int = 0) -> list[tuple[str | None, ast.Call]]:
    """(qualified name of the enclosing function or None, call) for calls of these names."""
    owner_of = {}
    for qualname, function in functions_of(tree).items():
        for node in ast.walk(function):
            owner_of.setdefault(id(node), qualname)
    calls = [(owner_of.get(id(node)), node) for node in ast.walk(tree)
             if isinstance(node, ast.Call) and called_name(node) in names
             and len(node.args) >= min_args]
    return sorted(calls, key=lambda pair: pair[1].lineno)


def application_calls(tree: ast.Module) -> list[tuple[str | None, ast.Call]]:
    """Calls of the application for a request: `app(...)`, `self.app(...)`, `application(...)`.

    The lifespan protocol calls the application too, but no request reaches it there."""
    return [(owner, call) for owner, call in calls_named(tree, APPLICATION_NAMES, min_args=2)
            if "lifespan" not in (owner or "").lower()]


def annotation_nodes(tree: ast.Module) -> set[int]:
    """ids of every node inside a type annotation: naming a class there calls nothing."""
    annotations = []
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign):
            annotations.append(node.annotation)
        elif isinstance(node, ast.arg) and node.annotation:
            annotations.append(node.annotation)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns:
            annotations.append(node.returns)
    return {id(inner) for annotation in annotations for inner in ast.walk(annotation)}


class CallGraph:
    """Every reference from one function to another among the book's modules."""

    def __init__(self, book):   # a scripts.render_docs.Book: its modules, parsed
        self.book = book
        self.functions: dict[str, dict[str, ast.AST]] = {
            name: functions_of(module.parsed.tree) for name, module in book.modules.items()}
        self.classes: dict[str, dict[str, ast.ClassDef]] = {
            name: {node.name: node for node in module.parsed.tree.body
                   if isinstance(node, ast.ClassDef)}
            for name, module in book.modules.items()}
        self.types: dict[str, dict[tuple[str, str], tuple[str, str]]] = {}
        self.callers: dict[Node, list[tuple[Node, int]]] = {}
        for name in book.modules:
            self._find_instance_types(name)
        for name in book.modules:
            self._add_edges(name)

    # -- what an expression names ----------------------------------------------

    def class_named(self, module: str, expression: ast.AST, function: str = "") -> tuple[str, str] | None:
        """The (module, class) an expression names or makes: `Worker`, `pep3333.Response`,
        `Worker(...)`, or a variable the code assigned one of those to."""
        here = self.book.modules[module]
        if isinstance(expression, ast.Call):
            return self.class_named(module, expression.func, function)
        if isinstance(expression, ast.Name):
            if expression.id in self.classes[module]:
                return module, expression.id
            if expression.id in here.imported:
                target, qualname = here.imported[expression.id]
                return (target, qualname) if qualname in self.classes[target] else None
            own_class = function.split(".")[0] if "." in function else None
            if expression.id == "self" and own_class:
                return module, own_class
            return self.types[module].get((function, expression.id))
        if isinstance(expression, ast.Attribute) and isinstance(expression.value, ast.Name):
            owner = expression.value.id
            if owner in here.aliases:
                target = here.aliases[owner]
                return (target, expression.attr) if expression.attr in self.classes[target] else None
            if owner == "self" and "." in function:
                return self.types[module].get((function.split(".")[0], f"self.{expression.attr}"))
        return None

    def method(self, module: str, class_name: str, name: str, seen: frozenset = frozenset()) -> Node | None:
        """Where `name` is defined for instances of a class: the class, else its bases in order."""
        if f"{class_name}.{name}" in self.functions[module]:
            return module, f"{class_name}.{name}"
        if (module, class_name) in seen:
            return None
        for base in self.classes[module][class_name].bases:
            found = self.class_named(module, base)
            if found:
                inherited = self.method(*found, name, seen | {(module, class_name)})
                if inherited:
                    return inherited
        return None

    def _find_instance_types(self, module: str) -> None:
        """`x = Worker(...)` in function f: (f, "x"); `self.pool = Pool(...)` in class C:
        (C, "self.pool"); each to the (module, class) it holds."""
        found = self.types[module] = {}
        for qualname, function in self.functions[module].items():
            own_class = qualname.split(".")[0] if "." in qualname else None
            for node in ast.walk(function):
                if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)):
                    continue
                made = self.class_named(module, node.value.func)
                if made is None:
                    continue
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        found[(qualname, target.id)] = made
                    elif (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
                          and target.value.id == "self" and own_class):
                        found[(own_class, f"self.{target.attr}")] = made

    def referenced(self, module: str, function: str, node: ast.AST) -> Node | None:
        """The function a Name or Attribute node refers to, if the code says which."""
        here = self.book.modules[module]
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id in here.aliases:
                target = here.aliases[node.value.id]
                if node.attr in self.functions[target]:
                    return target, node.attr
                if node.attr in self.classes[target]:
                    return self.method(target, node.attr, "__init__")
                return None
            owner = self.class_named(module, node.value, function)
            return self.method(*owner, node.attr) if owner else None
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            if node.id in self.functions[module]:
                return module, node.id
            if node.id in self.classes[module]:
                return self.method(module, node.id, "__init__")
            if node.id in here.imported:
                target, qualname = here.imported[node.id]
                if qualname in self.functions[target]:
                    return target, qualname
                if qualname in self.classes[target]:
                    return self.method(target, qualname, "__init__")
        return None

    def _add_edges(self, module: str) -> None:
        skipped = annotation_nodes(self.book.modules[module].parsed.tree)
        for qualname, function in self.functions[module].items():
            for node in ast.walk(function):
                if id(node) in skipped:
                    continue
                callee = self.referenced(module, qualname, node)
                if callee and callee != (module, qualname):
                    self.callers.setdefault(callee, []).append(((module, qualname), node.lineno))

    # -- paths -------------------------------------------------------------------

    def path(self, goals: set[Node], start: Node) -> tuple[Node, list[tuple[Node, Node, int]]] | None:
        """Where the chain starts, and its (caller, callee, line) steps to one of `goals`.

        When nothing in the code leads from `start` (asyncio calls a Protocol's
        data_received, a thread pool runs what it was handed), the chain begins at the
        function of start's module nearest a goal that nothing in the files calls.
        None when no function of that module leads to a goal."""
        distance = {goal: 0 for goal in goals}
        step: dict[Node, tuple[Node, int]] = {}
        queue = deque(sorted(goals))
        while queue:
            current = queue.popleft()
            for caller, line in sorted(self.callers.get(current, []), key=lambda c: (c[0], c[1])):
                if caller not in distance:
                    distance[caller] = distance[current] + 1
                    step[caller] = (current, line)
                    queue.append(caller)
        if start not in distance:
            roots = [node for node in distance if node[0] == start[0] and node not in goals
                     and not self.callers.get(node)]
            if not roots:
                return None
            start = min(roots, key=lambda node: (distance[node], node))
        chain, current = [], start
        while current not in goals:
            callee, line = step[current]
            chain.append((current, callee, line))
            current = callee
        return start, chain
