#!/usr/bin/env bash
# Install what is missing (evcxr_jupyter, the Jupyter venv, the kernel, data, models); idempotent.
source "$(dirname "$0")/common.sh"
setup_all
