"""Mixed precision as a wrapper around the training step, not a copied branch.

:class:`Precision` offers ``autocast()`` for the forward pass, and
``backward()`` and ``update()`` (together ``step()``) for the backward pass
and the optimizer update, so the trainer can check the gradients between.
fp32 is the identity; fp16 adds a dynamic loss scaler; bf16 needs none.
Paddle's AMP does nothing on CPU, so there the wrapper says so once and runs
fp32.
"""

import contextlib

import paddle

from paddleseg.utils import logger

__all__ = ['Precision']


class Precision:
    """Forward/backward policy for one precision.

    Args:
        precision (str): ``fp32``, ``fp16`` or ``bf16``.
        amp_level (str): ``O1`` (autocast lists) or ``O2`` (pure half).
        on_gpu (bool): Whether the run computes on a GPU.
    """

    def __init__(self, precision='fp32', amp_level='O1', on_gpu=False):
        if precision not in ('fp32', 'fp16', 'bf16'):
            raise ValueError('precision must be fp32, fp16 or bf16, got '
                             '{!r}.'.format(precision))
        if precision != 'fp32' and not on_gpu:
            logger.warning(
                'precision=%s requested on CPU, where Paddle\'s AMP has no '
                'effect; training in fp32.', precision)
            precision = 'fp32'
        self.precision = precision
        self.amp_level = amp_level
        self.scaler = (paddle.amp.GradScaler(init_loss_scaling=1024)
                       if precision == 'fp16' else None)

    @property
    def enabled(self):
        return self.precision != 'fp32'

    def decorate(self, model, optimizer):
        """Cast for O2 (pure half precision); identity otherwise."""
        if self.enabled and self.amp_level == 'O2':
            return paddle.amp.decorate(models=model, optimizers=optimizer,
                                       level='O2', dtype=self._dtype())
        return model, optimizer

    def _dtype(self):
        return 'float16' if self.precision == 'fp16' else 'bfloat16'

    def autocast(self):
        if not self.enabled:
            return contextlib.nullcontext()
        return paddle.amp.auto_cast(level=self.amp_level, dtype=self._dtype())

    def backward(self, loss):
        """Gradients of ``loss`` (scaled when a loss scaler is in use)."""
        if self.scaler is None:
            loss.backward()
        else:
            self.scaler.scale(loss).backward()

    def update(self, optimizer):
        """The parameter update from the gradients, which it then clears."""
        if self.scaler is None:
            optimizer.step()
        else:
            self.scaler.step(optimizer)
            self.scaler.update()
        optimizer.clear_grad()

    def step(self, loss, optimizer):
        """Backward pass and parameter update."""
        self.backward(loss)
        self.update(optimizer)

    def state_dict(self):
        return self.scaler.state_dict() if self.scaler is not None else {}

    def set_state_dict(self, state):
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)
