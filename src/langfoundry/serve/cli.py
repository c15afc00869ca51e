"""langfoundry serve: the champion and challenger behind an OpenAI-compatible API, every answer logged.

params.yaml's serve section sets the defaults; each flag overrides its key. A model is a registry stage
(prod, staging) or a model folder (models/merged). The database is --database, else
$LANGFOUNDRY_DATABASE_URL, else serve.database. CPU kernels are pinned as in the pipeline (two torch
threads); LANGFOUNDRY_NATIVE_KERNELS=1 lets torch use every core. This module imports nothing heavy until
it serves, so the langfoundry command starts fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass

from langfoundry.cli.arguments import share_argument, with_one_line_errors
from langfoundry.core.config import Params, load_params
from langfoundry.core.errors import UserError
from langfoundry.serve.routing import MODES


@dataclass(frozen=True)
class ServePlan:
    """What `langfoundry serve` will run: params.serve with the command line's overrides applied."""
    champion: str
    challenger: str | None  # None: champion only
    mode: str
    challenger_share: float
    database: str
    max_new_tokens: int
    scrub_pii: bool
    salt: str




def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    parser.add_argument("--params", default="params.yaml", help="the parameter file (default: params.yaml)")
    parser.add_argument("--champion", help="registry stage or model folder that answers by default (serve.champion)")
    parser.add_argument("--challenger", help="registry stage or model folder compared with it (serve.challenger)")
    parser.add_argument("--mode", choices=MODES, help="ab: a sticky share of users meets the challenger; shadow: the "
                                                      "challenger answers logged copies; champion_only (serve.mode)")
    parser.add_argument("--challenger-share", type=share_argument, metavar="SHARE",
                        help="ab: share of users sent to the challenger (serve.challenger_share)")
    parser.add_argument("--database", help="SQLAlchemy URL of the log (default: $LANGFOUNDRY_DATABASE_URL, else serve.database)")
    parser.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")


def plan(params: Params, args: argparse.Namespace, environ: dict[str, str] | None = None) -> ServePlan:
    from langfoundry.serve.store import database_url

    serve = params.serve
    mode = args.mode or serve.mode
    challenger = args.challenger or serve.challenger
    if mode != "champion_only" and not challenger:
        raise UserError(f"serve.mode is {mode} but no challenger is set; set serve.challenger (or --challenger), "
                        "or use --mode champion_only")
    return ServePlan(
        champion=args.champion or serve.champion, challenger=None if mode == "champion_only" else challenger, mode=mode,
        challenger_share=serve.challenger_share if args.challenger_share is None else args.challenger_share,
        database=database_url(serve.database, args.database, environ), max_new_tokens=serve.max_new_tokens,
        scrub_pii=serve.scrub_pii, salt=str(params.seed))


def load_models(chosen: ServePlan) -> dict:
    """{"champion": ServedModel, "challenger": ServedModel} (the challenger only when it is another version)."""
    from langfoundry.serve.generation import ServedModel, resolve_model

    # both resolved before either loads: a missing stage is reported at once, not after a long load
    champion = resolve_model(chosen.champion, "serve.champion")
    challenger = resolve_model(chosen.challenger, "serve.challenger") if chosen.challenger is not None else None
    if challenger is not None and challenger.version == champion.version:
        logging.getLogger("langfoundry.serve").warning(
            "champion and challenger are both %s: serving it alone (champion_only)", champion.version)
        challenger = None
    models = {"champion": ServedModel.load(champion, "serve.champion")}
    if challenger is not None:
        models["challenger"] = ServedModel.load(challenger, "serve.challenger")
    return models


def serve(args: argparse.Namespace) -> int:
    """Load the models, open the database and serve until interrupted."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    chosen = plan(load_params(args.params), args)
    import uvicorn

    from langfoundry.serve.app import ServeSettings, create_app
    from langfoundry.serve.store import Store

    models = load_models(chosen)
    store = Store(chosen.database)
    settings = ServeSettings(mode=chosen.mode, challenger_share=chosen.challenger_share, salt=chosen.salt,
                             max_new_tokens=chosen.max_new_tokens, scrub_pii=chosen.scrub_pii)
    app = create_app(models, store, settings)
    service = app.state.service
    share = f" ({chosen.challenger_share:.0%} of users to the challenger)" if service.mode == "ab" else ""
    print(f"serve: {', '.join(f'{role} {model.version}' for role, model in models.items())}; mode {service.mode}{share}; "
          f"logging to {store.engine.url.render_as_string(hide_password=True)}; http://{args.host}:{args.port}/v1",
          flush=True)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    finally:
        store.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="langfoundry serve", description=__doc__)
    add_arguments(parser)
    return with_one_line_errors(serve, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
