#!/usr/bin/env bash
# The PaddleSeg 2.8.0 trainer that benchmarks/train_vs_paddleseg.py runs
# beside ours, in a venv of its own (idempotent; for the benchmark only):
#   bash benchmarks/paddleseg28/setup.sh      # venv: $PSEG28_VENV
# default benchmarks/paddleseg28/venv (python3.11), Paddle 3.3.1 CPU, PaddleSeg 2.8.0 from
# PyPI with --no-deps (its pins want opencv-python<=4.6 and visualdl, which do
# not fit numpy 2 / py3.11), dependencies pinned by hand to the versions of
# the framework's own .venv where they overlap (numpy, opencv, pillow,
# paddle). Then patch.py patches the installed package (four small fixes for
# Paddle 3 and numpy 2, each with its reason).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
VENV=${PSEG28_VENV:-$HERE/venv}
PY=${PYTHON:-python3.11}

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet paddlepaddle==3.3.1 numpy==2.4.6 pillow==13.0.0
"$VENV/bin/python" -m pip install --quiet --no-deps paddleseg==2.8.0
# what the wheel imports on the training/eval path (visualdl only with
# --use_vdl, not installed; sklearn is imported by paddleseg.utils.metrics)
"$VENV/bin/python" -m pip install --quiet \
    opencv-python-headless==5.1.0.95 PyYAML==6.0.4 prettytable==3.19.0 \
    tqdm==4.70.1 scipy==1.17.1 filelock==4.3.1 scikit-learn==1.9.1 \
    six==1.17.0 requests==2.34.2

(cd /tmp && "$VENV/bin/python" "$HERE/patch.py")
(cd /tmp && "$VENV/bin/python" -W ignore -c \
  "import paddle, paddleseg, cv2, numpy; from paddleseg.cvlibs import Config, SegBuilder; from paddleseg.core import train; print('ok: paddle', paddle.__version__, 'paddleseg', paddleseg.__version__, 'cv2', cv2.__version__, 'numpy', numpy.__version__)")
