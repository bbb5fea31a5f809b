#!/usr/bin/env bash
# Disk footprint of a fresh venv with the core package vs the [all] extras (torch 2.13.0 CPU build
# first, as the README's set-up does). Usage: bash experiments/install_size.sh [work dir]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-$(mktemp -d)}"
mkdir -p "$work/src"
git -C "$repo" archive --format=tar HEAD | tar -x -C "$work/src"
cd "$work"
python -m venv empty
python -m venv core && core/bin/pip install -q ./src
python -m venv all && all/bin/pip install -q torch==2.13.0 && all/bin/pip install -q "./src[all]"
echo "| install | venv size MB | packages | torch |"
echo "|---|---:|---:|---|"
for v in empty core all; do
  n=$(($($v/bin/pip list 2>/dev/null | wc -l) - 2))
  t=$($v/bin/python -c "import importlib.util as u; print('yes' if u.find_spec('torch') else 'no')")
  echo "| $v | $(du -sm $v | cut -f1) | $n | $t |"
done
echo
echo "largest in core (MB): $(cd core/lib/python3.*/site-packages && du -sm * | sort -rn | head -5 | awk '{printf "%s %s, ", $2, $1}')"
echo "largest in all (MB): $(cd all/lib/python3.*/site-packages && du -sm * | sort -rn | head -5 | awk '{printf "%s %s, ", $2, $1}')"
