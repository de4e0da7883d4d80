"""``index.html``: a run's pictures side by side, one row per image (NVIDIA's
``--dump_assets`` results page). Links are relative to the page, so the
folder can be moved or served as it is (with the input images where they
were relative to it)."""

import html
import os
from urllib.parse import quote

from paddleseg.utils.fileio import atomic_write_text

__all__ = ['write_page']

_STYLE = """
body { font-family: sans-serif; margin: 1em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: 4px; vertical-align: top; }
td img { max-width: 320px; display: block; }
td.name { font-family: monospace; }
"""


def _link(page_dir, path):
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(page_dir))
    return quote(rel.replace(os.sep, '/'))


def write_page(save_dir, rows, title='Predictions'):
    """Write ``save_dir/index.html``.

    Args:
        save_dir (str): Folder of the page.
        rows (list): ``[(name, [(column, file path), ...]), ...]``; every
            row has the same columns, in order.
        title (str): The page's title.

    Returns:
        str: The page's path.
    """
    columns = [c for c, _ in rows[0][1]] if rows else []
    out = ['<!DOCTYPE html>', '<html><head><meta charset="utf-8">',
           '<title>{}</title><style>{}</style></head><body>'.format(
               html.escape(title), _STYLE),
           '<h1>{}</h1>'.format(html.escape(title)),
           '<p>{} images.</p>'.format(len(rows)), '<table>',
           '<tr><th>image</th>{}</tr>'.format(''.join(
               '<th>{}</th>'.format(html.escape(c)) for c in columns))]
    for name, cells in rows:
        tds = ''.join(
            '<td><a href="{0}"><img src="{0}" alt="{1}" loading="lazy"></a>'
            '</td>'.format(_link(save_dir, path), html.escape(column))
            for column, path in cells)
        out.append('<tr><td class="name">{}</td>{}</tr>'.format(
            html.escape(name), tds))
    out += ['</table>', '</body></html>', '']
    os.makedirs(save_dir, exist_ok=True)
    path = os.path.join(save_dir, 'index.html')
    atomic_write_text(path, '\n'.join(out))
    return path
