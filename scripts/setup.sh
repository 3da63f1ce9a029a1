#!/usr/bin/env bash
# Install everything softphone needs on a Debian machine (run as root or with sudo):
# the Debian packages of its peers and devices, then a .venv with the package and
# its test extras.  Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

DEB_PACKAGES=(
	sip-tester          # SIPp: interop tests and benchmarks
	kamailio            # SIP registrar and proxy for the registration tests
	kamailio-tls-modules # Kamailio's tls.so: the SIP over TLS tests
	openssl             # the TLS tests make their CA and certificates with it
	iproute2            # network namespaces for the two-host tests
	portaudio19-dev     # PyAudio builds against PortAudio
	libgl1 libglib2.0-0 # OpenCV's GUI wheel needs them at import time
	gcc python3-dev     # wheels that compile (pesq, NetfilterQueue)
	baresip baresip-core baresip-ffmpeg baresip-x11   # media interop peer
	linphone-cli mediastreamer2-plugin-openh264      # media interop peer
	pulseaudio pulseaudio-utils libasound2-plugins   # real PortAudio devices without a sound card
	espeak-ng           # speech samples for the audio-quality tests
	nftables iptables libnetfilter-queue-dev         # loss and delay between test namespaces
	iputils-ping        # proves the impaired link in the tests
	xvfb imagemagick xdotool                         # the video window on a virtual display, screenshots
	dnsmasq-base        # serves NAPTR, SRV and A records for the DNS tests
	coturn              # STUN and TURN server for the ICE tests
)
missing=()
for p in "${DEB_PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	$SUDO apt-get update
	$SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
	"$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
# An editable install leaves the package's bytecode to its first import, and where
# PYTHONDONTWRITEBYTECODE is set every start compiles the whole package again (0.3 s before
# the phone listens): compile it here, as pip does for a regular install.
.venv/bin/python -m compileall -q softphone
echo "setup done: $(.venv/bin/softphone --version)"
