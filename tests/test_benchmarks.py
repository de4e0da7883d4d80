"""benchmarks/step_profile.py reads Paddle 3.3.1's profiler summary: the
phases per step and the top-level operators (their nested rows are parts of
them), from an excerpt of a real summary (3 profiled steps; the lines cut
at 79 columns, the title rules shortened)."""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks import step_profile  # noqa: E402

SUMMARY = """\
-----Model Summary-----
Time unit: ms
---------------  ------  ----------------------------------------------  ------
Name             Calls   CPU Total / Avg / Max / Min / Ratio(%)          GPU To
---------------  ------  ----------------------------------------------  ------
ProfileStep      3       6825.56 / 2275.19 / 3433.71 / 1157.93 / 100.00  0.00 /
  Dataloader     3       4.83 / 1.61 / 4.48 / 0.15 / 0.07                0.00 /
  Forward        9       2822.36 / 313.60 / 1352.43 / 7.41 / 41.35       0.00 /
  Backward       3       3613.04 / 1204.35 / 2014.15 / 781.18 / 52.93    0.00 /
  Optimization   3       217.04 / 72.35 / 156.80 / 23.54 / 3.18          0.00 /
  Others         -       168.30 / - / - / - / 2.47                       0.00 /
---------------  ------  ----------------------------------------------  ------
Note:
In this table, GPU time is the sum of all device(GPU) events called in the phas

-----Operator Summary-----
Time unit: ms
----------------------------------------------------  ------  -----------------
Name                                                  Calls   CPU Total / Avg /
----------------------------------------------------  ------  -----------------
-----Thread: All threads merged-----
Global_Conv2dGradNodeFinal                            105     3190.12 / 30.38 /
  Local_Conv2dGradNodeFinal                           105     3182.07 / 30.31 /
conv2d dygraph                                        105     2146.53 / 20.44 /
  conv2d infer_meta                                   105     0.71 / 0.01 / 0.0
  conv2d kernel launch                                105     2141.37 / 20.39 /
  conv2d node_creation                                105     2.59 / 0.02 / 0.5
momentum_ dygraph                                     282     210.89 / 0.75 / 3
Note:
"""


def test_phases_per_step():
    phases = step_profile.model_summary(SUMMARY, steps=3)
    assert phases == pytest.approx({
        'ProfileStep': 6825.56 / 3, 'Dataloader': 4.83 / 3,
        'Forward': 2822.36 / 3, 'Backward': 3613.04 / 3,
        'Optimization': 217.04 / 3, 'Others': 168.30 / 3})


def test_top_level_operators_only():
    ops = step_profile.operator_summary(SUMMARY, steps=3)
    assert set(ops) == {'Global_Conv2dGradNodeFinal', 'conv2d dygraph',
                        'momentum_ dygraph'}
    assert ops['conv2d dygraph'] == pytest.approx((2146.53 / 3, 35))
    assert ops['momentum_ dygraph'] == pytest.approx((210.89 / 3, 94))
