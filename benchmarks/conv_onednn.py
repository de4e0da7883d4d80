"""The training convolution through oneDNN (``paddleseg/ops/onednn_conv.py``)
against Paddle's own eager conv2d (im2col + MKL GEMM), layer by layer on the
convolutions of a config's model at its training batch and crop: each
distinct convolution (input shape, weight shape, stride, padding, dilation)
timed forward + input and weight gradients, both in this process, interleaved,
median of 7 after 2 warm-ups; the sum over the model's layers (a shape used
twice counts twice) is the convolution time of one training step.

    python benchmarks/conv_onednn.py [--config ...] [--out folder]
        # writes <out>/conv_onednn.{json,md}
"""

import argparse
import collections
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.common import machine, median_time, write_results  # noqa

CONFIG = os.path.join(ROOT, 'configs', 'quick_start', 'ccnet_resnet18_demo.yml')


def model_convolutions(config):
    """(count, input shape, layer) of each distinct Conv2D the operator
    can compute in a training forward pass of ``config``'s model (routed or
    not: the 1x1 ones show why they are not)."""
    import numpy as np
    import paddle
    from paddleseg.cvlibs import Config, SegBuilder
    from paddleseg.ops import onednn_conv
    cfg = Config(config)
    builder = SegBuilder(cfg)
    model = builder.model
    img = np.asarray(builder.train_dataset[0]['img'])
    seen = collections.OrderedDict()

    def record(layer, inputs):
        x = inputs[0]
        key = (tuple(x.shape), tuple(layer.weight.shape),
               tuple(layer._stride), tuple(onednn_conv._plain_padding(layer)),
               tuple(layer._dilation))
        count, _, _ = seen.get(key, (0, None, None))
        seen[key] = (count + 1, tuple(x.shape), layer)

    handles = [l.register_forward_pre_hook(record)
               for l in model.sublayers() if onednn_conv.computes_layer(l)]
    model.train()
    model(paddle.randn([cfg.batch_size] + list(img.shape)))
    for h in handles:
        h.remove()
    return list(seen.values())


def time_layer(layer, shape):
    """Seconds of forward + both gradients: Paddle's conv, the operator."""
    import paddle
    import paddle.nn.functional as F
    from paddleseg.ops import onednn_conv
    x = paddle.randn(list(shape))
    x.stop_gradient = False
    w = layer.weight.detach()
    w.stop_gradient = False
    pad = onednn_conv._plain_padding(layer)
    y = F.conv2d(x, w, stride=layer._stride, padding=pad,
                 dilation=layer._dilation)
    g = paddle.randn(y.shape)

    def paddle_conv():
        out = F.conv2d(x, w, stride=layer._stride, padding=pad,
                       dilation=layer._dilation)
        paddle.autograd.backward([out], [g])

    def ours():
        out = onednn_conv.conv2d(x, w, layer._stride, pad, layer._dilation)
        paddle.autograd.backward([out], [g])

    return (median_time(paddle_conv, repeat=7),
            median_time(ours, repeat=7))


def markdown(rows, info, config):
    lines = [
        '# Training convolution: oneDNN operator against Paddle\'s conv2d',
        '',
        'CPU: {}, {} threads, Paddle {}; the Conv2D layers of `{}` in a '
        'training step (forward + input and weight gradients, ms, median of '
        '7; both in one process).'.format(
            info['cpu'], info['threads'], info['paddle'], config),
        '',
        '| input | weight | stride, pad, dil | layers | Paddle | oneDNN op '
        '| speed-up | routed in training |',
        '|---|---|---|---|---|---|---|---|']
    for r in rows:
        lines.append('| {} | {} | {}, {}, {} | {} | {:.2f} | {:.2f} | '
                     '{:.2f}x | {} |'.format(
                         r['input'], r['weight'], r['stride'][0],
                         r['padding'][0], r['dilation'][0], r['count'],
                         r['paddle_ms'], r['onednn_ms'],
                         r['paddle_ms'] / r['onednn_ms'],
                         'yes' if r['routed'] else 'no (1x1)'))
    paddle_total = sum(r['count'] * r['paddle_ms'] for r in rows)
    ours_total = sum(r['count'] * (r['onednn_ms'] if r['routed'] else
                                   r['paddle_ms']) for r in rows)
    lines += ['', 'All the step\'s convolutions: Paddle {:.1f} ms, as '
              'training routes them (the routed ones through the operator) '
              '{:.1f} ms (**{:.2f}x**).'.format(
                  paddle_total, ours_total, paddle_total / ours_total), '']
    return '\n'.join(lines), paddle_total, ours_total


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--config', default=CONFIG)
    p.add_argument('--out', default=None)
    args = p.parse_args()
    import paddleseg  # noqa: F401  (threads, MKL path)
    from paddleseg.ops import onednn_conv
    if onednn_conv.load() is None:
        sys.exit('The oneDNN convolution is unavailable here: {}.'.format(
            onednn_conv._state['error']))
    rows = []
    for count, shape, layer in model_convolutions(args.config):
        paddle_s, ours_s = time_layer(layer, shape)
        rows.append({'input': list(shape), 'weight': list(layer.weight.shape),
                     'stride': list(layer._stride),
                     'padding': onednn_conv._plain_padding(layer),
                     'dilation': list(layer._dilation), 'count': count,
                     'routed': onednn_conv.supports_layer(layer),
                     'paddle_ms': paddle_s * 1e3, 'onednn_ms': ours_s * 1e3})
    info = dict(machine(), threads=os.environ.get('OMP_NUM_THREADS'))
    config = os.path.relpath(args.config, ROOT)
    text, paddle_total, ours_total = markdown(rows, info, config)
    write_results('conv_onednn', {
        'machine': info, 'config': config, 'rows': rows,
        'paddle_total_ms': paddle_total, 'routed_total_ms': ours_total,
        'speedup': paddle_total / ours_total}, text, args.out)


if __name__ == '__main__':
    main()
