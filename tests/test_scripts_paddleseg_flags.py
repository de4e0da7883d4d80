"""PaddleSeg's flags end to end through the root scripts, on the tiny demo
data: train.py with the moving average, repeats, early stop, the static
forward and the profiler; val.py on the average with AUC-ROC and summed
probabilities; export.py --for_fd and infer.py reading that folder."""

import json
import os
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from script_helpers import (make_tiny_data, run_script,  # noqa: E402
                            write_train_config)


def _one_error(proc, words):
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert 'unrecognized arguments' not in proc.stderr
    errors = [l for l in proc.stderr.splitlines() if l.startswith('Error: ')]
    assert len(errors) == 1 and words in errors[0], proc.stderr[-2000:]


def test_training_flags_then_val_export_for_fd_and_infer(tmp_path):
    data = make_tiny_data(tmp_path)
    cfg = write_train_config(tmp_path / 'tiny.yml', iters=6, data=data)
    out = tmp_path / 'out'
    proc = run_script(
        'train.py', '--config', cfg, '--do_eval', '--save_interval', '2',
        '--use_ema', '--repeats', '2', '--early_stop_intervals', '5',
        '--to_static_training', '--data_format', 'NCHW', '--device', 'cpu',
        '--profiler_options', 'batch_range=[1,3];exit_on_finished=false',
        '--save_dir', str(out))
    log = proc.stdout + proc.stderr
    assert 'static program' in log and '[EVAL] EMA model, iter 6' in log
    for it in (2, 4, 6):
        assert (out / 'iter_{}'.format(it) / 'ema_model.pdparams').is_file()
    assert (out / 'ema_best_model' / 'ema_model.pdparams').is_file()
    assert 'Operator' in (out / 'profiler_summary.txt').read_text()
    state = json.loads((out / 'iter_6' / 'train_state.json').read_text())
    assert state['run']['repeats'] == 2 and state['early_stop_count'] <= 2
    assert 'ema_best_miou' in state

    proc = run_script('val.py', '--config', cfg, '--model_path',
                      str(out / 'ema_best_model'), '--auc_roc', 'True',
                      '--aug_eval', '--flip_horizontal', '--aug_combine',
                      'probs', '--data_format', 'NCHW')
    last = proc.stdout.strip().splitlines()[-1]
    assert 'Auc_roc: ' in last, last

    export_dir = tmp_path / 'fd'
    run_script('export.py', '--config', cfg, '--model_path',
               str(out / 'iter_6' / 'model.pdparams'), '--save_dir',
               str(export_dir), '--for_fd', '--output_op', 'none')
    assert sorted(os.listdir(export_dir)) == [
        'inference.json', 'inference.pdiparams', 'inference.yml']
    deploy = yaml.safe_load((export_dir / 'inference.yml').read_text())
    assert deploy['Deploy']['model'] == 'inference.json'
    assert deploy['Deploy']['params'] == 'inference.pdiparams'
    report = tmp_path / 'logs' / 'infer.log'
    proc = run_script(
        os.path.join('deploy', 'python', 'infer.py'), '--config',
        str(export_dir), '--image_path',
        os.path.join(data, 'leftImg8bit', 'val'), '--save_dir',
        str(tmp_path / 'infer'), '--benchmark', 'True', '--model_name',
        'tiny_fcn', '--save_log_path', str(report), '--with_argmax',
        '--print_detail', 'False', '--device', 'cpu', '--use_trt', 'False')
    text = report.read_text()
    assert 'model_name: tiny_fcn' in text and 'Per image over 2 images' in \
        text and text.strip() in proc.stdout
    assert len(list((tmp_path / 'infer' / 'pseudo_color_prediction')
                    .rglob('*.png'))) == 2

    proc = run_script(os.path.join('deploy', 'python', 'infer.py'),
                      '--config', str(export_dir), '--image_path',
                      os.path.join(data, 'leftImg8bit', 'val'),
                      '--use_trt', 'True', check=False)
    _one_error(proc, 'TensorRT runs on the GPU only')
    proc = run_script('train.py', '--config', cfg, '--save_dir',
                      str(tmp_path / 'es'), '--early_stop_intervals', '2',
                      check=False)
    _one_error(proc, 'add --do_eval')
