"""Stand-in for the get-pip.py that ansible-test downloads to bootstrap pip in its sanity venvs.

That script lives on ci-files.testing.ansible.com, which this machine cannot reach. This one does
the same job from what is reachable: pip from the interpreter's bundled ensurepip wheel, then the
requested packages (pip==X, setuptools, wheel) from PyPI. rig/sanity puts it in ansible-test's cache.
"""

import ensurepip
import os
import runpy
import sys

ensurepip.bootstrap(upgrade=True)
# get-pip.py takes pip's install options plus two of its own that pip does not know.
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
# Trust what this machine trusts (a TLS-inspecting proxy's CA lives in the system bundle).
# ansible-test runs this with a trimmed environment, so fall back to Debian's bundle.
candidates = [os.environ.get(k) for k in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")]
bundle = next((c for c in candidates + ["/etc/ssl/certs/ca-certificates.crt"] if c and os.path.isfile(c)), None)
if bundle:
    args = ["--cert", bundle] + args
sys.argv = ["pip", "install", "--quiet"] + args
runpy.run_module("pip", run_name="__main__", alter_sys=True)
