"""Running a module's main() in-process, as the unit and functional tests of modules do."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.testing import patch_module_args


def run_module(module, capsys, check_mode=False, diff=False, **args):
    """main() of ``module`` with ``args`` (ansible-core's supported way); its result, failed or not."""
    if check_mode:
        args["_ansible_check_mode"] = True
    if diff:
        args["_ansible_diff"] = True
    with patch_module_args(args), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)
