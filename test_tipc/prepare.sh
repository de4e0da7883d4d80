#!/bin/bash
# Get a checkout ready for a TIPC chain: install the project, build the
# criss-cross attention operator once, and generate the demo data (nothing is
# downloaded).
#
#   bash test_tipc/prepare.sh test_tipc/configs/ccnet/train_infer_python.txt lite_train_lite_infer
#
# Environment: PYTHON (default: the txt's `python:` key, else python3);
# TIPC_SKIP_INSTALL=1 skips the pip install (e.g. in an already set-up venv).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/test_tipc/common_func.sh"
tipc_setup "$0" "$@" || exit 2
func_parser_value "$TXT" model_name > /dev/null || exit 2
cd "$ROOT" || exit 2

if [ "${TIPC_SKIP_INSTALL:-0}" = "1" ]; then
    echo "TIPC_SKIP_INSTALL=1: not installing (using $PYTHON as it is)."
else
    "$PYTHON" -m pip install --quiet -r requirements.txt -e . || {
        echo "Error: installing the project with $PYTHON failed (see pip's output above)." >&2
        exit 1
    }
fi

# Built here once, so the timed training steps (and the two processes of the
# distributed one) find it cached. Without a compiler the chain still runs,
# on the pure-Paddle criss-cross attention.
if ! "$PYTHON" -m paddleseg.ops > /dev/null; then
    echo "Warning: the criss-cross attention operator could not be built;" \
         "CCNet will use the pure-Paddle path." >&2
fi

# Remade only when missing or written by another version of the generator
# (its stamp data/demo/demo_data.json), as tools/run_demo.py does.
if "$PYTHON" -c "import sys; sys.path.insert(0, 'tools'); \
from make_demo_data import is_current; sys.exit(0 if is_current('data/demo') else 1)"; then
    echo "Demo data in data/demo is current."
else
    "$PYTHON" tools/make_demo_data.py --out data/demo || {
        echo "Error: generating the demo data failed." >&2
        exit 1
    }
fi
