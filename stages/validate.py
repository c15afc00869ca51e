"""Stage validate: params.yaml, sources.yaml and every language tag they use, checked before any stage runs."""

import argparse

from langfoundry.core.errors import stage_entry
from langfoundry.core.inventory import validate_project


def main(params: str = "params.yaml", sources: str | None = None, inventory: str | None = None) -> None:
    print(validate_project(params, sources, inventory))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    stage_entry(lambda args: main(args.params), parser)
