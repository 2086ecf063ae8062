"""Prints, as JSON, the CloudFormation template SAM's own transform (aws-sam-translator, which
aws-sam-cli pins) makes of template.yaml: what `sam deploy` hands to CloudFormation. Offline:
no credentials, no network. Run it with a clean environment.

`sam deploy` first packages the functions (`CodeUri: .` becomes an S3 location); the transform
refuses a local path, so each CodeUri is replaced by a placeholder S3 URI, as packaging does.
The template's policies name no managed policy by name, so the loader (which would ask IAM for
ARNs) answers nothing.

Usage: python sam_transform.py TEMPLATE [Name=Value ...]   (parameter values, as overrides)
"""
import json
import os
import sys

from samcli.yamlhelper import yaml_parse
from samtranslator.translator.transform import transform


class NoManagedPolicies:
    def load(self):
        return {}


def main(template_path: str, overrides: list) -> None:
    # The transform adds the region to some ARNs; it reads it from the environment.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with open(template_path) as f:
        template = yaml_parse(f.read())
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://pss-billing-package/function.zip"
    parameters = dict(o.split("=", 1) for o in overrides)
    json.dump(transform(template, parameters, NoManagedPolicies()), sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
