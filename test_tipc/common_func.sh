#!/bin/bash
# Helpers shared by test_tipc/prepare.sh and test_tipc/test_train_inference_python.sh.
#
# A chain's settings live in a `key:value` text file (test_tipc/configs/*/
# train_infer_python.txt). Keys are looked up by name, so lines can be
# reordered or added; lines without a key (section rules `=====...`, `##`)
# are ignored. A value may differ per mode:
#     --iters:lite_train_lite_infer=20|whole_train_whole_infer=500
# A value without `<mode>=` entries holds for every mode; `|` in such a value
# is a list the chain loops over (`--enable_mkldnn:True|False`).

# The modes these scripts can run: lite data is generated locally, nothing is
# downloaded, so the whole-data modes of PaddleSeg's TIPC are not offered.
TIPC_MODES="lite_train_lite_infer"

# Failed steps so far (status_check counts them).
TIPC_FAILURES=${TIPC_FAILURES:-0}

# func_parser_value FILE KEY: print the value of the first `KEY:` line of FILE.
# Fails (status 1, a message on stderr) when FILE or the key is missing.
func_parser_value() {
    local file=$1 key=$2
    if [ ! -f "$file" ]; then
        echo "Error: TIPC config '$file' does not exist." >&2
        return 1
    fi
    # index(), not a regex: keys hold dots and dashes (Global.use_gpu, --iters).
    awk -v key="$key" '
        { sub(/\r$/, "") }
        index($0, key ":") == 1 { print substr($0, length(key) + 2); found = 1; exit }
        END { exit !found }' "$file" && return 0
    echo "Error: key '$key' is missing from $file; add a line '$key:<value>'." >&2
    return 1
}

# func_parser_mode_entry VALUE MODE [KEY]: the part of VALUE for MODE.
# `lite_train_lite_infer=20|whole_train_whole_infer=500` gives 20 for
# lite_train_lite_infer; a VALUE with no `<mode>=` entry is printed whole; a
# VALUE with entries for other modes only is an error (KEY names it).
func_parser_mode_entry() {
    local value=$1 mode=$2 key=${3:-value} entry has_modes=0 entries
    IFS='|' read -r -a entries <<< "$value"  # read, not $value: no globbing
    for entry in "${entries[@]}"; do
        if [ "${entry#"$mode"=}" != "$entry" ]; then
            printf '%s\n' "${entry#"$mode"=}"
            return 0
        fi
        [[ $entry =~ ^[A-Za-z_]+_infer= ]] && has_modes=1
    done
    if [ "$has_modes" -eq 1 ]; then
        echo "Error: '$key:$value' has no entry for mode $mode; add '|$mode=<value>'." >&2
        return 1
    fi
    printf '%s\n' "$value"
}

# func_parser_mode_value FILE KEY MODE: func_parser_value, then the MODE part.
func_parser_mode_value() {
    local raw
    raw=$(func_parser_value "$1" "$2") || return 1
    func_parser_mode_entry "$raw" "$3" "$2"
}

# func_duplicate_keys FILE: print each key that appears on more than one line
# (a lookup by name reads only the first, so a repeated key is a mistake).
func_duplicate_keys() {
    awk '{ sub(/\r$/, "") }
         /^[^=#][^:]*:/ { key = substr($0, 1, index($0, ":") - 1)
                          if (key != "null" && seen[key]++ == 1) print key }' "$1"
}

# func_check_mode MODE: succeed for a mode these scripts run; else explain.
func_check_mode() {
    local m
    for m in $TIPC_MODES; do
        [ "$1" = "$m" ] && return 0
    done
    echo "Error: mode '$1' is not supported; use one of: $TIPC_MODES (the lite" \
         "data is generated locally, nothing is downloaded)." >&2
    return 1
}

# tipc_setup SCRIPT ARGS...: the arguments both scripts take, `<txt> <mode>`.
# Sets TXT (absolute path), MODE, and PYTHON ($PYTHON, else the txt's
# `python:` key, else python3). Returns 2 with a message on a bad command
# line, an unknown mode or a missing txt.
tipc_setup() {
    local script=$1
    shift
    if [ $# -ne 2 ]; then
        echo "Usage: bash $script <train_infer_python.txt> lite_train_lite_infer" >&2
        return 2
    fi
    TXT=$(realpath "$1") || return 2
    MODE=$2
    func_check_mode "$MODE" || return 2
    [ -f "$TXT" ] || { echo "Error: TIPC config '$1' does not exist." >&2; return 2; }
    PYTHON=${PYTHON:-$(func_parser_value "$TXT" python 2> /dev/null || echo python3)}
}

# status_check RC COMMAND LOG: append PaddleSeg's result line for COMMAND to
# LOG, count a failure in TIPC_FAILURES; returns RC.
status_check() {
    local rc=$1 cmd=$2 log=$3
    if [ "$rc" -eq 0 ]; then
        echo "Run successfully with command - ${cmd}!" | tee -a "$log"
    else
        echo "Run failed with command - ${cmd}!" | tee -a "$log"
        TIPC_FAILURES=$((TIPC_FAILURES + 1))
    fi
    return "$rc"
}
