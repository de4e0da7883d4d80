"""Run an exported model over image files: preprocess with the
deploy.yaml transforms, batch images of one size, run the network (a Paddle
Inference predictor, or any runner of :mod:`paddleseg.deploy.backends`),
map the output back to each
image's size and write it with predict.py's writers
(:class:`paddleseg.core.writers.ResultWriter`)."""

import time

import numpy as np
import paddle

from paddleseg.core.infer import reverse_transform
from paddleseg.core.writers import DEFAULT_KINDS, ResultWriter
from paddleseg.cvlibs.builder import build_transforms
from paddleseg.transforms import Compose
from paddleseg.utils.errors import SegError

__all__ = ['Segmenter', 'Timings']


class Timings:
    """Wall time per stage, for ``--benchmark``."""

    STAGES = ('preprocess', 'inference', 'postprocess')

    def __init__(self):
        self.total = dict.fromkeys(self.STAGES, 0.0)
        self.images = 0

    def add(self, stage, seconds):
        self.total[stage] += seconds

    def report(self):
        n = max(self.images, 1)
        parts = ['{} {:.1f} ms'.format(s, 1000 * self.total[s] / n)
                 for s in self.STAGES]
        return 'Per image over {} images: {}.'.format(self.images,
                                                      ', '.join(parts))


def _deploy_transforms(items, source):
    """The ``Deploy.transforms`` of a deploy.yaml, built."""
    try:
        return Compose(build_transforms(items, source))
    except (TypeError, ValueError, KeyError) as e:
        raise SegError('The transforms in {} cannot be built ({}); fix them '
                       'or re-export the model.'.format(source, e)) from e


def to_label_map(output, output_op, trans_info):
    """(H, W) uint8 class ids of one image's predictor output, at the size
    the image had before its transforms."""
    out = paddle.to_tensor(output[np.newaxis])
    if output_op == 'argmax':
        ids = reverse_transform(out.astype('int32'), trans_info,
                                mode='nearest')
        return ids[0, 0].numpy().astype(np.uint8)
    scores = reverse_transform(out, trans_info, mode='bilinear')
    return paddle.argmax(scores, axis=1)[0].numpy().astype(np.uint8)


class Segmenter:
    """Segment image files with ``predictor`` as ``deploy`` describes.

    Args:
        runner: ``runner(batch) -> output`` on (N, 3, H, W) float32 arrays
            (:func:`paddleseg.deploy.backends.create_runner`), or a
            ``paddle.inference`` predictor.
        deploy (DeployConfig): The exported model's deploy.yaml.
    """

    def __init__(self, runner, deploy):
        if hasattr(runner, 'get_input_handle'):  # a bare predictor
            from .backends import _PaddleRunner
            runner = _PaddleRunner(runner)
        self.runner = runner
        self.output_op = deploy.output_op
        self.transforms = _deploy_transforms(deploy.transforms,
                                           deploy.path + ': Deploy.transforms')
        self.palette = deploy.palette
        self.timings = Timings()

    def predict(self, batch):
        """Outputs of a list of CHW float32 arrays of one size."""
        return self.runner(np.stack(batch))

    def batches(self, images, batch_size=1):
        """The preprocessed inputs of ``images`` as (N, 3, H, W) arrays,
        images of different sizes in separate batches (what ``run`` feeds
        the network; for comparing runtimes on the same data)."""
        return [np.stack([samples[i]['img'] for i in members])
                for _, samples, groups in self._grouped(images, batch_size)
                for members in groups]

    def _grouped(self, images, batch_size):
        """Per run of ``batch_size`` images: (paths, preprocessed samples,
        lists of the indices of same-sized samples). Each list is one
        network call: a batch cannot mix sizes."""
        for first in range(0, len(images), batch_size):
            paths = images[first:first + batch_size]
            samples = [self._preprocess(p) for p in paths]
            groups = {}
            for i, sample in enumerate(samples):
                groups.setdefault(sample['img'].shape, []).append(i)
            yield paths, samples, list(groups.values())

    def _preprocess(self, path):
        start = time.perf_counter()
        sample = self.transforms(dict(img=path, trans_info=[], gt_fields=[]))
        self.timings.add('preprocess', time.perf_counter() - start)
        return sample

    def run(self, images, image_dir, save_dir, batch_size=1,
            kinds=DEFAULT_KINDS):
        """Segment ``images`` and write ``kinds`` of results for each (see
        :class:`~paddleseg.core.writers.ResultWriter`); returns the files of
        the first kind (palette PNGs by default). Images of different sizes
        go in separate batches. With ``assets`` among the kinds,
        ``save_dir/index.html`` shows each input, prediction and composite
        (an exported program returns labels or scores only, so it has no
        further assets)."""
        writer = ResultWriter(save_dir, image_dir, self.palette, kinds=kinds)
        written = []
        for paths, samples, groups in self._grouped(images, batch_size):
            for members in groups:
                start = time.perf_counter()
                outputs = self.predict([samples[i]['img'] for i in members])
                self.timings.add('inference', time.perf_counter() - start)
                start = time.perf_counter()
                for i, output in zip(members, outputs):
                    pred = to_label_map(output, self.output_op,
                                        samples[i]['trans_info'])
                    written.append(writer.write(paths[i], pred)[0])
                self.timings.add('postprocess', time.perf_counter() - start)
            self.timings.images += len(paths)
        if 'assets' in kinds:
            writer.write_page(images)
        return written

    def warm_up(self, images, batch_size=1):
        """Run the predictor over ``images`` and write nothing (TensorRT's
        shape collection for ``infer.py --enable_auto_tune``)."""
        for batch in self.batches(images, batch_size):
            self.runner(batch)
