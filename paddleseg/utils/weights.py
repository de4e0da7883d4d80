"""Loading weights: pretrained backbones and whole trained models.

``pretrained:`` and ``--model_path`` accept a ``.pdparams`` file, a folder
holding ``model.pdparams``, an archive (``.tar.gz``/``.tgz``/``.tar``/``.zip``,
as PaddleSeg publishes its backbones) holding one, or a URL. URLs are fetched
once into ``$PADDLESEG_HOME`` (default ``~/.paddleseg/pretrained``); without
network access they fail within seconds with a message saying what to do.

Loading matches parameters by name and shape and reports the missing,
unexpected and shape-mismatched ones by name, so a wrong checkpoint is
noticed instead of silently leaving random weights.
"""

import hashlib
import os
import shutil
import tarfile
import urllib.request
import zipfile

import paddle

from . import logger
from .errors import CheckpointError
from .fileio import atomic_write

__all__ = ['resolve_weights', 'load_state_dict', 'load_pretrained_model',
           'load_entire_model', 'LoadReport']

_ARCHIVES = ('.tar.gz', '.tgz', '.tar', '.zip')
_DOWNLOAD_TIMEOUT_S = 10


def _cache_dir():
    root = os.environ.get('PADDLESEG_HOME',
                          os.path.join(os.path.expanduser('~'), '.paddleseg'))
    return os.path.join(root, 'pretrained')


def _download(url):
    name = os.path.basename(url.split('?')[0]) or 'weights'
    digest = hashlib.sha1(url.encode()).hexdigest()[:8]
    target = os.path.join(_cache_dir(), digest + '_' + name)
    if os.path.isfile(target):
        return target
    os.makedirs(_cache_dir(), exist_ok=True)
    logger.info('Downloading %s', url)
    try:
        with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as r, \
                atomic_write(target, 'wb') as f:
            shutil.copyfileobj(r, f)
    except OSError as e:
        raise CheckpointError(
            'Cannot download {} ({}); download it where there is network '
            'access and set the path to the local file instead of the URL.'
            .format(url, getattr(e, 'reason', e))) from e
    return target


def _extract(archive):
    out = archive
    for ext in _ARCHIVES:
        if out.endswith(ext):
            out = out[:-len(ext)]
            break
    out += '_extracted'
    if not os.path.isdir(out):
        tmp = '{}.{}.part'.format(out, os.getpid())
        try:
            if archive.endswith('.zip'):
                with zipfile.ZipFile(archive) as z:
                    z.extractall(tmp)
            else:
                with tarfile.open(archive) as t:
                    t.extractall(tmp, filter='data')
            os.replace(tmp, out)
        except (OSError, tarfile.TarError, zipfile.BadZipFile) as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise CheckpointError('Cannot extract {} ({}); check that it is a '
                                  'complete archive.'.format(archive, e)) from e
    for dirpath, _, files in sorted(os.walk(out)):
        for f in sorted(files):
            if f.endswith('.pdparams'):
                return os.path.join(dirpath, f)
    raise CheckpointError('{} holds no .pdparams file; give the archive that '
                          'contains model.pdparams.'.format(archive))


def resolve_weights(path):
    """A local ``.pdparams`` path for ``path`` (file, folder, archive, URL)."""
    path = str(path)
    if path.startswith(('http://', 'https://')):
        path = _download(path)
    if os.path.isdir(path):
        candidate = os.path.join(path, 'model.pdparams')
        if not os.path.isfile(candidate):
            raise CheckpointError('{} is a folder without model.pdparams; give '
                                  'the .pdparams file or its folder.'.format(path))
        return candidate
    if not os.path.isfile(path):
        raise CheckpointError('Weights file {} does not exist; check the path.'
                              .format(path))
    if path.endswith(_ARCHIVES):
        return _extract(path)
    return path


def load_state_dict(path):
    """The state dict stored at ``path`` (see :func:`resolve_weights`)."""
    file = resolve_weights(path)
    try:
        state = paddle.load(file)
    except Exception as e:
        raise CheckpointError('Cannot read weights from {} ({}: {}); it is not a '
                              'Paddle state dict (.pdparams).'.format(
                                  file, type(e).__name__, e)) from e
    if not isinstance(state, dict):
        raise CheckpointError('{} holds a {}, not a state dict; give a '
                              '.pdparams file.'.format(file, type(state).__name__))
    return state


class LoadReport:
    """Names of the missing, unexpected and shape-mismatched parameters."""

    def __init__(self, loaded, missing, unexpected, mismatched):
        self.loaded = loaded
        self.missing = missing
        self.unexpected = unexpected
        self.mismatched = mismatched  # [(name, checkpoint shape, model shape)]

    def describe(self, limit=10):
        parts = []
        for title, items in (('missing', self.missing),
                             ('unexpected', self.unexpected),
                             ('shape-mismatched', [
                                 '{} {}->{}'.format(*m) for m in self.mismatched
                             ])):
            if items:
                shown = ', '.join(items[:limit])
                more = ' (+{} more)'.format(len(items) - limit) if len(
                    items) > limit else ''
                parts.append('{} {}: {}{}'.format(len(items), title, shown, more))
        return '; '.join(parts)


def _strip_prefix(state, model_keys):
    """Use ``backbone.x`` entries for a backbone if no key matches as is."""
    if any(k in state for k in model_keys):
        return state
    for prefix in ('backbone.', 'model.'):
        stripped = {k[len(prefix):]: v for k, v in state.items()
                    if k.startswith(prefix)}
        if any(k in stripped for k in model_keys):
            return stripped
    return state


def _match(model, state):
    own = model.state_dict()
    state = _strip_prefix(state, own)
    matched, missing, mismatched = {}, [], []
    for name, param in own.items():
        if name not in state:
            missing.append(name)
            continue
        value = state[name]
        shape = list(value.shape)
        if shape != list(param.shape):
            mismatched.append((name, shape, list(param.shape)))
            continue
        matched[name] = value
    unexpected = [k for k in state if k not in own]
    return matched, LoadReport(len(matched), missing, unexpected, mismatched)


def load_pretrained_model(model, pretrained):
    """Load matching weights into ``model``; warn about the others."""
    state = load_state_dict(pretrained)
    matched, report = _match(model, state)
    if not matched:
        raise CheckpointError(
            'No parameter of {} matches the weights in {} ({}); check that the '
            'checkpoint belongs to this model.'.format(
                type(model).__name__, pretrained, report.describe(3)))
    own = model.state_dict()
    for name, value in matched.items():  # set_state_dict warns per missing key
        own[name].set_value(value.astype(own[name].dtype) if isinstance(
            value, paddle.Tensor) else value)
    detail = report.describe()
    logger.info('Loaded %d/%d parameters of %s from %s%s', report.loaded,
                len(model.state_dict()), type(model).__name__, pretrained,
                '; ' + detail if detail else '.')
    if detail:
        logger.warning('Weights from %s: %s', pretrained, detail)
    return report


def load_entire_model(model, model_path):
    """Load a trained model's weights (e.g. ``output/best_model``)."""
    return load_pretrained_model(model, model_path)
