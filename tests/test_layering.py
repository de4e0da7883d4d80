"""The package's imports: no circle between files, and no package importing
one above it (utils at the bottom, deploy at the top).

Read from the source with ``ast`` (every ``import``, also inside functions),
so an import that would close a circle only at run time is caught as well.
"""

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, 'paddleseg')

# The floors of the house, bottom first: a package may import its own floor
# and those below, never one above.
FLOORS = [
    ('utils', ),
    ('cvlibs', 'ops'),
    ('transforms', 'models'),
    ('datasets', ),
    ('core', ),
    ('deploy', ),
]
FLOOR_OF = {pkg: level for level, pkgs in enumerate(FLOORS) for pkg in pkgs}
# What training and evaluation must do without (they reach models through
# the registry only).
FORBIDDEN = {'core': ('paddleseg.deploy', 'paddleseg.models',
                      'paddle.inference')}


def _modules():
    """{dotted module name: file} of every module of the package."""
    found = {}
    for dirpath, _, files in os.walk(PACKAGE):
        for name in files:
            if not name.endswith('.py'):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, ROOT)[:-3].split(os.sep)
            if rel[-1] == '__init__':
                rel = rel[:-1]
            found['.'.join(rel)] = path
    return found


MODULES = _modules()


def _imported(module, path):
    """Absolute names of what ``module`` imports (``from a import b`` gives
    ``a.b`` when that is a module, else ``a``)."""
    tree = ast.parse(open(path, encoding='utf-8').read(), path)
    package = module if path.endswith('__init__.py') else \
        module.rpartition('.')[0]
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                parts = package.split('.')
                parts = parts[:len(parts) - node.level + 1]
                base = '.'.join(parts + ([base] if base else []))
            for alias in node.names:
                full = '{}.{}'.format(base, alias.name)
                names.append(full if full in MODULES else base)
    return names


def _graph():
    """{module: set of package modules it imports explicitly}. (Importing
    ``paddleseg.x.y`` also runs the ``__init__`` files above it, by
    Python's rules; those implicit imports are not edges.)"""
    graph = {}
    for module, path in MODULES.items():
        graph[module] = {name for name in _imported(module, path)
                         if name in MODULES and name != module}
    return graph


def _cycle(graph):
    """One import circle as a list of modules, or None."""
    state = {}

    def visit(node, stack):
        state[node] = 'open'
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 'open':
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, stack)
                if found:
                    return found
        stack.pop()
        state[node] = 'done'
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node, [])
            if found:
                return found
    return None


def _package(module):
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else None


def test_every_package_has_a_floor():
    packages = {_package(m) for m in MODULES} - {None}
    assert packages == set(FLOOR_OF), (
        'a package is missing from FLOORS (or FLOORS names one that is '
        'gone): {}'.format(packages ^ set(FLOOR_OF)))


def test_no_import_circle():
    cycle = _cycle(_graph())
    assert cycle is None, 'import circle: ' + ' -> '.join(cycle)


@pytest.mark.parametrize('module', sorted(
    m for m in MODULES if _package(m) is not None))
def test_no_upward_import(module):
    floor = FLOOR_OF[_package(module)]
    for name in _imported(module, MODULES[module]):
        target = _package(name) if name.startswith('paddleseg.') else None
        if target is not None and target in FLOOR_OF:
            assert FLOOR_OF[target] <= floor, (
                '{} (floor {}) imports {} (floor {})'.format(
                    module, floor, name, FLOOR_OF[target]))
        for prefix in FORBIDDEN.get(_package(module), ()):
            assert not (name == prefix or name.startswith(prefix + '.')), (
                '{} imports {}'.format(module, name))


def test_the_checks_see_real_imports():
    # Guard against a parser that finds nothing: known edges are seen.
    graph = _graph()
    assert 'paddleseg.cvlibs.manager' in graph['paddleseg.cvlibs.builder']
    assert 'paddleseg.core.infer' in graph['paddleseg.core.val']
    assert _cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c',
                                                            'a']
