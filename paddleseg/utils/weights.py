"""Loading weights: pretrained backbones and whole trained models.

``pretrained:`` and ``--model_path`` accept a ``.pdparams`` or
``.safetensors`` file, a folder holding ``model.pdparams`` (or
``model.safetensors``), an archive (``.tar.gz``/``.tgz``/``.tar``/``.zip``,
as PaddleSeg publishes its backbones) holding one, or a URL. URLs are fetched
once into ``$PADDLESEG_HOME`` (default ``~/.paddleseg/pretrained``); without
network access they fail within seconds with a message saying what to do.

No file is unpickled with ``paddle.load``: ``.pdparams`` go through the
restricted unpickler of :mod:`paddleseg.utils.safe_pickle`, which refuses a
file that asks to run anything, and ``.safetensors`` cannot hold code at all.

Loading matches parameters by name and shape and reports the missing,
unexpected and shape-mismatched ones by name. ``pretrained:`` may leave some
unset (a backbone's classifier, another dataset's head) and warns; a trained
model given to ``val.py``/``predict.py``/``export.py`` must set every
parameter (``strict``), so another model's checkpoint is refused instead of
evaluated with random weights.
"""

import hashlib
import os
import shutil
import tarfile
import urllib.request
import zipfile

import numpy as np
import paddle

from . import logger
from . import safe_pickle
from .errors import CheckpointError
from .fileio import atomic_path, atomic_write

__all__ = ['resolve_weights', 'load_state_dict', 'read_state_file',
           'write_safetensors', 'load_pretrained_model', 'load_entire_model',
           'LoadReport', 'SAFETENSORS']

_ARCHIVES = ('.tar.gz', '.tgz', '.tar', '.zip')
SAFETENSORS = '.safetensors'
_WEIGHT_FILES = ('.pdparams', SAFETENSORS)
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
            if f.endswith(_WEIGHT_FILES):
                return os.path.join(dirpath, f)
    raise CheckpointError('{} holds no .pdparams (or .safetensors) file; give '
                          'the archive that contains model.pdparams.'.format(
                              archive))


def resolve_weights(path):
    """A local ``.pdparams``/``.safetensors`` path for ``path`` (file,
    folder, archive, URL)."""
    path = str(path)
    if path.startswith(('http://', 'https://')):
        path = _download(path)
    if os.path.isdir(path):
        # ema_model: the moving average PaddleSeg's --use_ema keeps, alone
        # in ema_best_model/.
        for stem in ('model', 'ema_model'):
            for ext in _WEIGHT_FILES:
                candidate = os.path.join(path, stem + ext)
                if os.path.isfile(candidate):
                    return candidate
        raise CheckpointError('{} is a folder without model.pdparams (or '
                              'model.safetensors, or the ema_model.pdparams '
                              'of ema_best_model/); give the weights file or '
                              'its folder.'.format(path))
    if not os.path.isfile(path):
        raise CheckpointError('Weights file {} does not exist; check the path.'
                              .format(path))
    if path.endswith(_ARCHIVES):
        return _extract(path)
    return path


# Entries paddle.save adds to a state dict that are not weights.
_METADATA_KEYS = ('StructuredToParameterName@@', )


def read_state_file(file):
    """The ``{name: ndarray}`` of a ``.pdparams``/``.pdopt`` or
    ``.safetensors`` file, read without running code from it
    (:mod:`paddleseg.utils.safe_pickle`; safetensors cannot hold code)."""
    if file.endswith(SAFETENSORS):
        return _read_safetensors(file)
    try:
        state = safe_pickle.to_arrays(safe_pickle.load(file))
    except safe_pickle.UnsafePickleError:
        raise
    except CheckpointError as e:
        raise CheckpointError('Cannot read weights from {} ({}); it is not a '
                              'Paddle state dict (.pdparams).'.format(
                                  file, e.__cause__ or e)) from e
    if not isinstance(state, dict):
        raise CheckpointError('{} holds a {}, not a state dict; give a '
                              '.pdparams file.'.format(file, type(state).__name__))
    for key in _METADATA_KEYS:
        state.pop(key, None)
    return state


def _safetensors_numpy():
    try:
        import safetensors.numpy
    except ImportError:
        raise CheckpointError(
            'Reading or writing .safetensors needs the safetensors package; '
            'run `pip install safetensors` (or `pip install -e .[safetensors]`).'
        ) from None
    return safetensors.numpy


def _read_safetensors(file):
    try:
        return dict(_safetensors_numpy().load_file(file))
    except CheckpointError:
        raise
    except Exception as e:
        raise CheckpointError('Cannot read {} as safetensors ({}: {}); the '
                              'file is damaged.'.format(file, type(e).__name__,
                                                        e)) from e


def write_safetensors(state, file):
    """Write a ``{name: array or Tensor}`` state dict as ``.safetensors``,
    atomically; non-array entries are left out."""
    arrays = {}
    for name, value in state.items():
        if isinstance(value, paddle.Tensor):
            value = value.numpy()
        if isinstance(value, np.ndarray):
            arrays[name] = np.ascontiguousarray(value)
    with atomic_path(file) as tmp:
        _safetensors_numpy().save_file(arrays, tmp)
    return file


def load_state_dict(path):
    """The state dict stored at ``path`` (see :func:`resolve_weights`), as
    ``{name: ndarray}``, read without running code from the file."""
    return read_state_file(resolve_weights(path))


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


def _set_values(model, matched):
    """Copy ``{name: array}`` into the model's parameters and buffers, cast
    to each one's dtype (a float64 checkpoint into a float32 model)."""
    own = model.state_dict()
    for name, value in matched.items():  # set_state_dict warns per missing key
        target = own[name]
        value = paddle.to_tensor(np.asarray(value))
        if value.dtype != target.dtype:
            value = value.astype(target.dtype)
        target.set_value(value)


def load_pretrained_model(model, pretrained, strict=False):
    """Load matching weights into ``model``; warn about the others.

    Args:
        model (paddle.nn.Layer): The model (or backbone).
        pretrained (str): See :func:`resolve_weights`.
        strict (bool): Refuse weights that leave any parameter of the model
            unset (missing or of another shape), naming how many and which.

    Returns:
        LoadReport: What matched and what did not.
    """
    state = load_state_dict(pretrained)
    matched, report = _match(model, state)
    if not matched:
        raise CheckpointError(
            'No parameter of {} matches the weights in {} ({}); check that the '
            'checkpoint belongs to this model.'.format(
                type(model).__name__, pretrained, report.describe(3)))
    if strict and (report.missing or report.mismatched):
        unset = len(report.missing) + len(report.mismatched)
        raise CheckpointError(
            '{} would leave {} of the {} parameters of {} unset ({}); it was '
            'trained for another model or config: give the checkpoint of this '
            'config\'s model.'.format(pretrained, unset, len(model.state_dict()),
                                      type(model).__name__,
                                      report.describe(5)))
    _set_values(model, matched)
    detail = report.describe()
    logger.info('Loaded %d/%d parameters of %s from %s%s', report.loaded,
                len(model.state_dict()), type(model).__name__, pretrained,
                '; ' + detail if detail else '.')
    if detail:
        logger.warning('Weights from %s: %s', pretrained, detail)
    return report


def load_entire_model(model, model_path, strict=False):
    """Load a trained model's weights (e.g. ``output/best_model``); with
    ``strict``, every parameter must be set (see
    :func:`load_pretrained_model`)."""
    return load_pretrained_model(model, model_path, strict=strict)
