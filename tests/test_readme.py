"""The README's component table lists exactly what the registries hold."""

import os
import re

import pytest

from paddleseg.cvlibs import manager

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _table_rows():
    """{first cell: names in backticks} of the README's component table."""
    rows = {}
    with open(os.path.join(ROOT, 'README.md'), encoding='utf-8') as f:
        for line in f:
            cells = [c.strip() for c in line.strip().strip('|').split('|')]
            if len(cells) == 2 and line.startswith('|'):
                # Component names (capitalised); not paths or arguments.
                rows[cells[0]] = {n for n in re.findall(r'`([^`]+)`',
                                                        cells[1])
                                  if re.fullmatch(r'[A-Z]\w*', n)}
    return rows


@pytest.mark.parametrize('registry', manager.ALL_REGISTRIES,
                         ids=lambda r: r.name)
def test_component_table_equals_the_registry(registry):
    rows = _table_rows()
    assert registry.name in rows, (
        "README.md's component table has no '{}' row".format(registry.name))
    listed, registered = rows[registry.name], set(registry.components_dict)
    assert listed == registered, (
        'README lists but does not register: {}; registers but the README '
        'does not list: {}'.format(sorted(listed - registered),
                                   sorted(registered - listed)))
