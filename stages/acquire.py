"""Stage acquire: fetch sources that live outside the repository into data/raw/acquired/."""

import argparse
import logging

from langfoundry.data.acquire import ACQUIRED_ROOT, acquire_sources
from langfoundry.core.config import load_sources
from langfoundry.core.errors import stage_entry


def main(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    acquired = acquire_sources(load_sources().sources)
    print(f"acquire: {len(acquired)} source(s) in {ACQUIRED_ROOT}")


if __name__ == "__main__":
    stage_entry(main, argparse.ArgumentParser(description=__doc__))
