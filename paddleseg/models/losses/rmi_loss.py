"""Region Mutual Information loss (Zhao et al., NeurIPS 2019), the RMI term
only, with PaddleSeg's arguments and value, made safe to train with.

RMI compares each ``radius x radius`` window of the (pooled) one-hot labels
``Y`` with the same window of the sigmoid probabilities ``P``, as points in
``d = radius**2`` dimensions, through the conditional covariance (a Schur
complement)

    M = S_Y - S_YP (S_P + a I)^-1 S_YP^T,     loss = 1/2 log det(M + a I),

with ``S_*`` the centred (not normalised) covariances of the points and
``a = 5e-4``; per class it is averaged over the batch and divided by ``d``,
then summed over classes. As in PaddleSeg there is no BCE term (mix one in
with ``MixedLoss``), and, as in every reference, the loss is usually negative.

Robustness. In exact arithmetic ``M`` is positive semi-definite, so
``M + a I`` has every eigenvalue at least ``a``; PaddleSeg, NVIDIA and the
original code nevertheless crash with "cholesky ... singular U"
(ZJULearning/RMI#12, PaddleSeg#3020) hundreds of iterations into a run. The
cause, measured: the explicit ``inverse(S_P + a I)``. Once predictions are
confident and correct, ``S_P`` tracks ``S_Y``, whose entries grow with the
number of points (about 3e4 on a 256x512 map) while its structure makes it
nearly rank-deficient; the inverse's rounding error, multiplied twice by
``S_YP``, then exceeds ``a`` and ``M + a I`` comes out indefinite (smallest
eigenvalue -1.7e-3 on saturated logits of a 256x512 three-class map,
``rmi_pool_stride: 1``; PaddleSeg's float64 Cholesky raises there). This
loss therefore

1. forms ``M`` as ``S_Y - W^T W`` with ``W = L^-1 S_YP^T`` and ``L`` the
   Cholesky factor of ``S_P + a I`` (mathematically the same value; on that
   map its smallest eigenvalue of ``M + a I`` is 5.0e-4, as it must be);
2. symmetrises ``M``;
3. factorises both matrices with :func:`floored_cholesky`: their smallest
   eigenvalue (``paddle.linalg.eigvalsh``, no gradient) is raised to the
   exact-arithmetic bound ``a`` by a diagonal shift before the Cholesky, so
   the factorisation cannot fail and a positive definite matrix (shift 0)
   gives PaddleSeg's value digit for digit. Step 1 is what removes the
   reported crash; this floor is the backstop that makes "never raises" hold
   whatever the map size: on the saturated striped maps above (up to 512x1024
   unpooled, 1024x2048 pooled) the shifts it applied were rounding-sized, at
   most 9e-9 against a = 5e-4, invisible in the float32 loss. Paddle 3.3 has no non-throwing
   Cholesky (``paddle.linalg.cholesky`` raises ``ValueError`` on CPU when a
   pivot is not positive); ``eigvalsh`` raises on NaN, so its input has
   non-finite entries zeroed, and a NaN batch gives a NaN loss (which the
   trainer reports) instead of an exception (on CPU; not tried on GPU). ``slogdet`` does not raise but
   its gradient is the inverse, unbounded near singularity.

Cost, measured (``benchmarks/rmi_loss.py``, forward + backward on logits
(2, 19, 128, 256), 2 shared CPU cores, ``OMP_NUM_THREADS=1``, medians of
interleaved calls): 369 ms with :func:`floored_cholesky` against 370 ms
with plain ``paddle.linalg.cholesky`` in its place, a ratio of 1.00: the 38
9x9 matrices cost about 0.3 ms per ``eigvalsh``; pooling, the window stack
and the covariance products dominate. PaddleSeg's own code (explicit inverse,
plain Cholesky) took 390 ms against this loss's 343 ms in one such run.

Other degenerate batches: a map too small to hold one ``radius x radius``
window after pooling gives PaddleSeg's forward value there, that of zero
covariances (``num_classes * log(sqrt(a) + 1e-8)``, also the value of an
all-ignored batch), with a zero gradient (PaddleSeg's backward raises); all
pixels ignored, one class everywhere, constant or
saturated logits and absent classes need nothing special (their covariances
are zero or tiny, and ``+ a I`` keeps them definite) and give PaddleSeg's
value.
"""

import math

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from paddleseg.cvlibs import manager
from .cross_entropy_loss import as_label

__all__ = ['RMILoss', 'floored_cholesky']

_CLIP_MIN = 1e-6   # added to the probabilities (PaddleSeg's _CLIP_MIN)
_POS_ALPHA = 5e-4  # a: keeps the covariances positive definite
_LOG_EPS = 1e-8    # PaddleSeg adds it to the Cholesky diagonal before the log
POOL_WAYS = {0: 'max', 1: 'avg', 2: 'interpolate'}


def floored_cholesky(matrix, floor):
    """Lower Cholesky factor of the symmetric ``matrix`` (float64, [..., d,
    d]) shifted by ``s I``, ``s = max(0, floor - smallest eigenvalue)`` per
    matrix, so that its smallest eigenvalue is at least ``floor``; ``s`` is
    not differentiated. Never raises on finite input; NaN entries give a NaN
    factor (Paddle 3.3.1's CPU Cholesky passes NaN through; its GPU kernel
    was not tried)."""
    values = matrix.detach()
    values = paddle.where(paddle.isfinite(values), values,
                          paddle.zeros_like(values))
    lowest = paddle.linalg.eigvalsh(values)[..., 0]
    shift = paddle.clip(floor - lowest, min=0.0)
    eye = paddle.eye(matrix.shape[-1], dtype=matrix.dtype)
    return paddle.linalg.cholesky(matrix + shift.unsqueeze(-1).unsqueeze(-1)
                                  * eye)


def _pooled_size(size, way, kernel, stride):
    if stride <= 1:
        return size
    if way == 2:
        return size // stride
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


def _region_vectors(x, radius):
    """[N, C, radius**2, points] float64: every ``radius x radius`` window
    of ``x`` [N, C, H, W] as one point, coordinates in row-major order."""
    n, c, h, w = x.shape
    new_h, new_w = h - radius + 1, w - radius + 1
    shifted = [x[:, :, y:y + new_h, dx:dx + new_w]
               for y in range(radius) for dx in range(radius)]
    return paddle.stack(shifted, axis=2).reshape(
        [n, c, radius * radius, -1]).astype('float64')


def _log_det_conditional(la, pr):
    """``log det(M + a I)`` [N, C] of the conditional covariance of the label
    points ``la`` given the probability points ``pr`` (see the module
    docstring)."""
    d = la.shape[2]
    eye = paddle.eye(d, dtype='float64')
    la = la - la.mean(axis=-1, keepdim=True)
    pr = pr - pr.mean(axis=-1, keepdim=True)
    la_t, pr_t = la.transpose([0, 1, 3, 2]), pr.transpose([0, 1, 3, 2])
    chol_p = floored_cholesky(paddle.matmul(pr, pr_t) + _POS_ALPHA * eye,
                              _POS_ALPHA)
    w = paddle.linalg.triangular_solve(chol_p, paddle.matmul(pr, la_t),
                                       upper=False)
    cond = paddle.matmul(la, la_t) - paddle.matmul(w.transpose([0, 1, 3, 2]),
                                                   w)
    cond = 0.5 * (cond + cond.transpose([0, 1, 3, 2])) + _POS_ALPHA * eye
    chol = floored_cholesky(cond, _POS_ALPHA)
    diag = paddle.diagonal(chol, axis1=-2, axis2=-1)
    return 2.0 * paddle.log(diag + _LOG_EPS).sum(axis=-1)


@manager.LOSSES.add_component
class RMILoss(nn.Layer):
    """Region Mutual Information loss, RMI term only (PaddleSeg's RMILoss).

    Args:
        num_classes (int): Number of classes; the logits must have this many
            channels. Defaults to the dataset's when built from a config.
        rmi_radius (int): Window side, 1 to 10.
        rmi_pool_way (int): Downsampling before RMI: 0 max pool, 1 average
            pool, 2 interpolation (nearest labels, bilinear probabilities).
        rmi_pool_size (int): Pooling window; must equal ``rmi_pool_stride``.
        rmi_pool_stride (int): Downsampling factor (1: none).
        loss_weight_lambda (float): Accepted for PaddleSeg configs and unused,
            as in PaddleSeg (it weighed the BCE term PaddleSeg dropped).
        ignore_index (int): Label value masked out of labels and probabilities.
    """

    def __init__(self, num_classes=19, rmi_radius=3, rmi_pool_way=0,
                 rmi_pool_size=3, rmi_pool_stride=3, loss_weight_lambda=0.5,
                 ignore_index=255):
        super().__init__()
        if int(rmi_radius) != rmi_radius or not 1 <= rmi_radius <= 10:
            raise ValueError('RMILoss: rmi_radius must be an integer from 1 '
                             'to 10, got {!r}.'.format(rmi_radius))
        if rmi_pool_way not in POOL_WAYS:
            raise ValueError('RMILoss: rmi_pool_way must be one of {}, got '
                             '{!r}.'.format(POOL_WAYS, rmi_pool_way))
        if rmi_pool_size != rmi_pool_stride or rmi_pool_stride < 1:
            raise ValueError('RMILoss: rmi_pool_size ({}) must equal '
                             'rmi_pool_stride ({}), at least 1.'.format(
                                 rmi_pool_size, rmi_pool_stride))
        if int(num_classes) < 1:
            raise ValueError('RMILoss: num_classes must be at least 1, got '
                             '{}.'.format(num_classes))
        self.num_classes = int(num_classes)
        self.rmi_radius = int(rmi_radius)
        self.rmi_pool_way = rmi_pool_way
        self.rmi_pool_size = int(rmi_pool_size)
        self.rmi_pool_stride = int(rmi_pool_stride)
        self.weight_lambda = loss_weight_lambda
        self.ignore_index = ignore_index
        self.half_d = self.rmi_radius**2

    def _pool(self, labels, probs):
        k, s = self.rmi_pool_size, self.rmi_pool_stride
        if s <= 1:
            return labels, probs
        if self.rmi_pool_way == 2:
            size = [labels.shape[2] // s, labels.shape[3] // s]
            return (F.interpolate(labels, size=size, mode='nearest'),
                    F.interpolate(probs, size=size, mode='bilinear',
                                  align_corners=True))
        pool = F.max_pool2d if self.rmi_pool_way == 0 else F.avg_pool2d
        return tuple(pool(x, kernel_size=k, stride=s, padding=k // 2)
                     for x in (labels, probs))

    def forward(self, logit, label):
        """Args: logit [N, C, H, W]; label [N, H, W] or [N, 1, H, W]."""
        if logit.shape[1] != self.num_classes:
            raise ValueError(
                'RMILoss has num_classes={} but the logits have {} channels; '
                'set loss num_classes to the model\'s number of classes (or '
                'drop it: it defaults to the dataset\'s).'.format(
                    self.num_classes, logit.shape[1]))
        sizes = [_pooled_size(x, self.rmi_pool_way, self.rmi_pool_size,
                              self.rmi_pool_stride) for x in logit.shape[2:]]
        if min(sizes) < self.rmi_radius:
            # Not one window fits: the value of zero covariances, as
            # PaddleSeg's forward gives (its backward raises).
            empty = self.num_classes * math.log(math.sqrt(_POS_ALPHA) +
                                                _LOG_EPS)
            return logit.astype('float32').sum() * 0.0 + empty
        label = as_label(label, logit)
        valid = (label != self.ignore_index).astype('float32')
        safe = paddle.where(label != self.ignore_index, label,
                            paddle.zeros_like(label))
        onehot = F.one_hot(safe, self.num_classes).astype('float32')
        onehot = (onehot * valid.unsqueeze(-1)).transpose([0, 3, 1, 2])
        probs = F.sigmoid(logit.astype('float32')) * valid.unsqueeze(1) + \
            _CLIP_MIN
        onehot, probs = self._pool(onehot.detach(), probs)
        log_det = _log_det_conditional(
            _region_vectors(onehot, self.rmi_radius).detach(),
            _region_vectors(probs, self.rmi_radius))
        per_class = (0.5 * log_det).mean(axis=0).astype('float32')
        return (per_class / float(self.half_d)).sum()
