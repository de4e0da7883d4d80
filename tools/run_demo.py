"""The README's main job: demo data, then train, evaluate, predict, export
and segment with the exported model in Paddle Inference.

Runs the same command lines a user would type (``train.py``, ``val.py``,
``predict.py``, ``export.py``, ``deploy/python/infer.py``) one after another
and stops at the first failure.

    python tools/run_demo.py --config configs/quick_start/fcn_resnet18_demo.yml
"""

import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'tools'))


def run(cmd):
    print('\n$ ' + ' '.join(cmd), flush=True)
    start = time.time()
    code = subprocess.call(cmd, cwd=ROOT)
    if code != 0:
        sys.exit('Step failed with exit code {}: {}'.format(code, ' '.join(cmd)))
    return time.time() - start


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--config',
                   default='configs/quick_start/ccnet_resnet18_demo.yml')
    p.add_argument('--save_dir', default='output/demo')
    p.add_argument('--data_dir', default='data/demo')
    args = p.parse_args()
    py = sys.executable
    from make_demo_data import is_current
    if not is_current(os.path.join(ROOT, args.data_dir)):  # missing or old
        run([py, 'tools/make_demo_data.py', '--out', args.data_dir])
    best = os.path.join(args.save_dir, 'best_model', 'model.pdparams')
    result = os.path.join(args.save_dir, 'result')
    t_train = run([py, 'train.py', '--config', args.config, '--do_eval',
                   '--save_dir', args.save_dir, '--save_interval', '200',
                   '--log_iters', '50'])
    run([py, 'val.py', '--config', args.config, '--model_path', best,
         '--save_dir', args.save_dir])
    run([py, 'predict.py', '--config', args.config, '--model_path', best,
         '--image_path', os.path.join(args.data_dir, 'leftImg8bit', 'val'),
         '--save_dir', result])
    model_dir = os.path.join(args.save_dir, 'inference_model')
    infer_dir = os.path.join(args.save_dir, 'infer')
    run([py, 'export.py', '--config', args.config, '--model_path', best,
         '--save_dir', model_dir])
    run([py, os.path.join('deploy', 'python', 'infer.py'), '--config',
         os.path.join(model_dir, 'deploy.yaml'), '--image_path',
         os.path.join(args.data_dir, 'leftImg8bit', 'val'), '--save_dir',
         infer_dir, '--benchmark'])
    attention = ''
    if _model_type(args.config) == 'CCNet':
        image, points = _attention_points(args.data_dir)
        attention_dir = os.path.join(args.save_dir, 'attention')
        run([py, 'tools/visualize_attention.py', '--config', args.config,
             '--model_path', best, '--image_path', image, '--points'] +
            points + ['--save_dir', attention_dir])
        attention = '; attention maps (image | R = 1 | R = 2): {}'.format(
            attention_dir)
    print('\nDone. Training took {:.0f} s. Metrics: {}; colour label maps: {}; '
          'overlays: {}; exported model: {} (its Paddle Inference results: '
          '{}){}.'.format(
              t_train, os.path.join(args.save_dir, 'metrics.json'),
              os.path.join(result, 'pseudo_color_prediction'),
              os.path.join(result, 'added_prediction'), model_dir, infer_dir,
              attention))


def _model_type(config):
    from paddleseg.cvlibs import Config
    return Config(config).model_cfg.get('type')


def _attention_points(data_dir, classes=(11, 13, 0)):
    """The first validation image and, for a person, a car and the road, the
    pixel of each farthest inside its region (as 'x,y')."""
    import cv2
    import numpy as np
    label_dir = os.path.join(ROOT, data_dir, 'gtFine', 'val', 'demo')
    name = sorted(os.listdir(label_dir))[0]
    label = cv2.imread(os.path.join(label_dir, name), cv2.IMREAD_GRAYSCALE)
    points = []
    for cls in classes:
        mask = np.uint8(label == cls)
        if mask.any():
            inside = cv2.distanceTransform(np.pad(mask, 1), cv2.DIST_L2, 3)
            y, x = np.unravel_index(np.argmax(inside[1:-1, 1:-1]),
                                    mask.shape)
            points.append('{},{}'.format(x, y))
    image = os.path.join(data_dir, 'leftImg8bit', 'val', 'demo', name.replace(
        '_gtFine_labelTrainIds.png', '_leftImg8bit.png'))
    return image, points


if __name__ == '__main__':
    main()
