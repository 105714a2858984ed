#!/bin/bash
# EMR bootstrap action: make sure /usr/bin/python3.11 exists on every node.
# EMR 7.1+ (Amazon Linux 2023) ships Python 3.11 next to the default 3.9; this is a no-op there
# and installs the AL2023 python3.11 package otherwise. The venv-pack environment archive links
# its bin/python to /usr/bin/python3.11 (it does not carry an interpreter).
set -euo pipefail
if ! command -v /usr/bin/python3.11 >/dev/null 2>&1; then
  sudo dnf install -y python3.11
fi
/usr/bin/python3.11 --version
