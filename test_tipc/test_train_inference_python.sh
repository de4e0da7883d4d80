#!/bin/bash
# The TIPC train -> evaluate -> export -> infer chain of one model on CPU:
#   train with each process count of `nproc_list` (2 processes go through
#   paddle.distributed.launch, which sets up gloo), val.py on the model the
#   first training wrote, export.py, and deploy/python/infer.py once per
#   `--enable_mkldnn` value.
#
#   bash test_tipc/test_train_inference_python.sh test_tipc/configs/ccnet/train_infer_python.txt lite_train_lite_infer
#
# Every step appends PaddleSeg's `Run successfully|failed with command - ...!`
# line to OUT/results_python.log and keeps its output in OUT/<step>.log, where
# OUT is $TIPC_OUTPUT_DIR/<model_name>/<mode> (default TIPC_OUTPUT_DIR:
# test_tipc/output; OUT is emptied first). A failed step does not stop the
# steps that do not need its output; the exit status is 1 if any step failed
# or could not run, 2 for a bad command line or txt.
# Environment: PYTHON overrides the txt's `python:` key; OMP_NUM_THREADS
# defaults to the number of cores.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/test_tipc/common_func.sh"
tipc_setup "$0" "$@" || exit 2
dups=$(func_duplicate_keys "$TXT")
if [ -n "$dups" ]; then
    echo "Error: $TXT sets these keys more than once (only the first would be" \
         "read): $(echo $dups)." >&2
    exit 2
fi

# need VAR KEY: VAR = the value of KEY for $MODE; a missing key ends the run.
need() {
    local value
    value=$(func_parser_mode_value "$TXT" "$2" "$MODE") || exit 2
    printf -v "$1" '%s' "$value"
}

need model_name model_name
need device --device
need nproc_list nproc_list
need config --config
need iters --iters
need batch_size --batch_size
need opts --opts
need log_iters --log_iters
need seed --seed
need train_model_name train_model_name
need norm_train norm_train
need eval_script eval
need export_script norm_export
need infer_script inference
need mkldnn_list --enable_mkldnn
need cpu_threads --cpu_threads
need image_path --image_path
IFS='|' read -r -a nprocs <<< "$nproc_list"
for n in "${nprocs[@]}"; do
    if ! [[ $n =~ ^[1-9][0-9]*$ ]]; then
        echo "Error: nproc_list:$nproc_list in $TXT must list process counts (e.g. 1|2)." >&2
        exit 2
    fi
done

cd "$ROOT" || exit 2
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
OUT=${TIPC_OUTPUT_DIR:-$ROOT/test_tipc/output}/$model_name/$MODE
rm -rf "$OUT" && mkdir -p "$OUT" || exit 2
RESULTS=$OUT/results_python.log
: > "$RESULTS"
SUMMARY=()
SKIPPED=0

# run_step NAME EXPECT CMD...: run CMD with its output in OUT/NAME.log; the
# step passes if CMD exits 0 and the path EXPECT then exists.
run_step() {
    local name=$1 expect=$2 log=$OUT/$1.log start=$SECONDS rc status
    shift 2
    echo "[$name] $*"
    "$@" > "$log" 2>&1
    rc=$?
    if [ "$rc" -eq 0 ] && [ ! -e "$expect" ]; then
        echo "TIPC: the command exited 0 but did not write $expect." >> "$log"
        rc=1
    fi
    if status_check "$rc" "$*" "$RESULTS" > /dev/null; then
        status=passed
    else
        status="FAILED (exit $rc)"
        echo "[$name] failed; the end of $log:" >&2
        tail -n 20 "$log" >&2
    fi
    SUMMARY+=("$(printf '%-20s %-16s %5d s  %s' "$name" "$status" \
                 $((SECONDS - start)) "$log")")
}

# skip_step NAME MISSING CMD...: record that CMD cannot run without MISSING.
skip_step() {
    local name=$1 missing=$2
    shift 2
    echo "Skipped command - $* (needs $missing)!" >> "$RESULTS"
    SUMMARY+=("$(printf '%-20s %-16s %5s    needs %s' "$name" skipped - "$missing")")
    SKIPPED=$((SKIPPED + 1))
}

# run_if INPUT NAME EXPECT CMD...: run_step when INPUT exists, else skip_step.
run_if() {
    local input=$1
    shift
    if [ -e "$input" ]; then
        run_step "$@"
    else
        skip_step "$1" "$input" "${@:3}"
    fi
}

# Script values may carry fixed arguments (`eval:val.py --num_workers 0`).
read -r -a train_cmd <<< "$norm_train"
read -r -a eval_cmd <<< "$eval_script"
read -r -a export_cmd <<< "$export_script"
read -r -a infer_cmd <<< "$infer_script"
train_args=(--config "$config" --device "$device" --iters "$iters"
            --batch_size "$batch_size" --save_interval "$iters"
            --log_iters "$log_iters" --seed "$seed")
if [ -n "$opts" ] && [ "$opts" != null ]; then
    read -r -a opt_list <<< "$opts"
    train_args+=(--opts "${opt_list[@]}")
fi
if [ "$train_model_name" = latest ]; then  # the trainer always saves the last
    train_model_name=iter_$iters/model.pdparams
fi

start_all=$SECONDS
model=
for n in "${nprocs[@]}"; do
    save_dir=$OUT/train_nproc$n
    if [ "$n" -eq 1 ]; then
        cmd=("$PYTHON" "${train_cmd[@]}")
    else
        # The cores are shared out between the processes.
        threads=$((OMP_NUM_THREADS / n > 0 ? OMP_NUM_THREADS / n : 1))
        cmd=(env OMP_NUM_THREADS=$threads "$PYTHON" -m paddle.distributed.launch
             --nproc_per_node "$n" --log_dir "$OUT/train_nproc${n}_workers"
             "${train_cmd[@]}")
    fi
    run_step "train_nproc$n" "$save_dir/$train_model_name" \
        "${cmd[@]}" "${train_args[@]}" --save_dir "$save_dir"
    model=${model:-$save_dir/$train_model_name}  # the first run's model is used
done

run_if "$model" eval "$OUT/eval/metrics.json" \
    "$PYTHON" "${eval_cmd[@]}" --config "$config" --device "$device" \
    --model_path "$model" --save_dir "$OUT/eval"

run_if "$model" export "$OUT/export/deploy.yaml" \
    "$PYTHON" "${export_cmd[@]}" --config "$config" --device "$device" \
    --model_path "$model" --save_dir "$OUT/export"

IFS='|' read -r -a mkldnn_values <<< "$mkldnn_list"
for mkldnn in "${mkldnn_values[@]}"; do
    save_dir=$OUT/infer_mkldnn_$mkldnn
    run_if "$OUT/export/deploy.yaml" "infer_mkldnn_$mkldnn" \
        "$save_dir/pseudo_color_prediction" \
        "$PYTHON" "${infer_cmd[@]}" --config "$OUT/export/deploy.yaml" \
        --image_path "$image_path" --device "$device" \
        --enable_mkldnn "$mkldnn" --cpu_threads "$cpu_threads" \
        --save_dir "$save_dir"
done

echo
echo "TIPC $model_name $MODE ($((SECONDS - start_all)) s, OMP_NUM_THREADS=$OMP_NUM_THREADS):"
printf '  %s\n' "${SUMMARY[@]}"
echo "Results: $RESULTS"
if [ "$TIPC_FAILURES" -gt 0 ] || [ "$SKIPPED" -gt 0 ]; then
    echo "$TIPC_FAILURES step(s) failed, $SKIPPED could not run." >&2
    exit 1
fi
