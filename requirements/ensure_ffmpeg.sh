#!/usr/bin/env bash
# ffmpeg + ffprobe are system programs (the decoder d2st drives through ffmpeg-python).
# Installs Debian's package when run as root on apt systems; otherwise says what to do.
set -euo pipefail
if command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null; then
  exit 0
fi
if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
  echo "ffmpeg/ffprobe missing: installing Debian's ffmpeg package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null
  exit 0
fi
echo "d2st needs ffmpeg and ffprobe on PATH. Install them with your package manager" >&2
echo "(apt-get install ffmpeg / brew install ffmpeg) or use environment.yml (conda-forge ffmpeg)." >&2
exit 1
