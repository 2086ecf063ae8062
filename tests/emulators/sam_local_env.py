"""Prints, as JSON, the environment `sam local invoke --env-vars env.local.json` gives each
function of template.yaml, computed by SAM's own code (aws-sam-cli, pinned in
scripts/tools-requirements.txt): template declarations with parameters resolved (defaults, and
the `parameter_overrides` samconfig.toml gives `sam local invoke`), overridden by the env-vars
file, plus SAM's AWS variables. No Docker needed. Run it with a clean environment:
SAM also takes declared variables from the shell, and AWS credentials from the profile.

Usage: python sam_local_env.py TEMPLATE ENV_VARS_JSON
"""
import json
import os
import sys

from samcli.cli.types import CfnParameterOverridesType
from samcli.commands.local.lib.local_lambda import LocalLambdaRunner
from samcli.lib.config.samconfig import SamConfig
from samcli.lib.providers.sam_function_provider import SamFunctionProvider
from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider


def local_invoke_overrides(template: str) -> dict:
    """`sam local invoke`'s parameter_overrides from the samconfig.toml next to the template."""
    params = SamConfig(os.path.dirname(os.path.abspath(template))).get_all(["local", "invoke"], "parameters")
    raw = params.get("parameter_overrides")
    if raw is None:
        return {}
    return CfnParameterOverridesType().convert(raw if isinstance(raw, list) else [raw], None, None)


def main(template: str, env_vars_file: str) -> None:
    overrides = local_invoke_overrides(template)
    stacks, _ = SamLocalStackProvider.get_stacks(template, parameter_overrides=overrides)
    provider = SamFunctionProvider(stacks)
    with open(env_vars_file) as f:
        env_vars_values = json.load(f)
    # The runner only resolves configuration here; nothing is started.
    runner = LocalLambdaRunner(
        local_runtime=None,
        function_provider=provider,
        cwd=".",
        real_path=".",
        env_vars_values=env_vars_values,
    )
    out = {f.name: runner._make_env_vars(f).resolve() for f in provider.get_all()}
    json.dump(out, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
