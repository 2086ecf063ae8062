"""Prints, as JSON, what SAM CLI reads from samconfig.toml for each environment and command,
with SAM's own code (samcli.lib.config.samconfig, which merges `global` into each command, and
samcli.cli.types.CfnParameterOverridesType, which parses `parameter_overrides`):

    {"<env>": {"<command>": {"<option>": value, ..., "parameter_overrides": {"Name": "Value"}}}}

Commands: build, deploy, validate, local invoke, local start-api. Usage: samconfig_json.py DIR
"""
import json
import sys

from samcli.cli.types import CfnParameterOverridesType
from samcli.lib.config.samconfig import SamConfig

COMMANDS = {
    "build": ["build"],
    "deploy": ["deploy"],
    "validate": ["validate"],
    "local_invoke": ["local", "invoke"],
    "local_start_api": ["local", "start-api"],
}


def main(config_dir: str) -> None:
    out = {}
    for env in SamConfig(config_dir).get_stage_configuration_names():
        if env == "version":
            continue
        out[env] = {}
        for name, cmd in COMMANDS.items():
            # A fresh reader per command, as each `sam` run has: get_all merges `global` into
            # the document it caches, which would leak one command's options into the next.
            params = dict(SamConfig(config_dir).get_all(cmd, "parameters", env=env))
            if "parameter_overrides" in params:
                raw = params["parameter_overrides"]
                values = raw if isinstance(raw, list) else [raw]
                params["parameter_overrides"] = CfnParameterOverridesType().convert(values, None, None)
            out[env][name] = params
    json.dump(out, sys.stdout, indent=1, sort_keys=True, default=str)


if __name__ == "__main__":
    main(sys.argv[1])
