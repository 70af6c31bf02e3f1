"""`attyguard feeds update | status`: outside rule feeds (Sigma, GTFOBins) as one bundle.

    attyguard feeds update [--sigma PATH|URL] [--gtfobins PATH|URL] [--json]
    attyguard feeds status [--json]

`update` compiles the given sources (a folder, a tarball, or an http(s) URL of
a tarball) into a new content-hashed bundle and switches to it atomically; a
source not named keeps its part of the current bundle. Exit statuses: 0 done,
3 error (nothing changed). See docs/feeds.md.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

from attyguard.commands._util import EXIT_OK, CommandError, Parser, run_command, write_json

__all__ = ["main"]


def main(argv: list[str]) -> int:
    return run_command("feeds", _run, argv)


def _parser() -> Parser:
    parser = Parser(prog="attyguard feeds", description="Outside rule feeds: Sigma and GTFOBins.")
    sub = parser.add_subparsers(dest="action", required=True, metavar="update|status")
    update = sub.add_parser("update", help="compile sources into a new bundle and switch to it")
    update.add_argument("--sigma", metavar="PATH|URL",
                        help="SigmaHQ rules (a checkout's rules/linux, a folder or tarball)")
    update.add_argument("--gtfobins", metavar="PATH|URL",
                        help="GTFOBins' _gtfobins folder (or a tarball of it)")
    update.add_argument("--json", action="store_true", help="print the new status as JSON")
    status = sub.add_parser("status", help="the bundle in use: sources, versions, counts, drops")
    status.add_argument("--json", action="store_true", help="print JSON")
    return parser


def _run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    from attyguard.feeds.bundle import FeedError, bundle_dir, load_current

    directory = bundle_dir()
    current, warning = load_current(directory)
    if args.action == "status":
        if warning:
            raise CommandError(warning)
        return _status(current, directory, args.json)
    if not args.sigma and not args.gtfobins:
        raise CommandError("name at least one source: --sigma and/or --gtfobins")
    try:
        content = _build(args.sigma, args.gtfobins, current or {})
        from attyguard.feeds.bundle import write_bundle

        path = write_bundle(content, directory)
    except FeedError as exc:
        raise CommandError(str(exc)) from None
    new, _ = load_current(directory)
    if args.json:
        write_json(_status_json(new, directory))
    else:
        sys.stdout.write(f"feeds: now using {path.name}\n")
        _status(new, directory, False)
    return EXIT_OK


def _build(sigma: str | None, gtfobins: str | None, current: dict[str, Any]) -> dict[str, Any]:
    from rich.progress import Progress

    from attyguard.feeds.bundle import materialise, tree_digest

    content: dict[str, Any] = {
        "sigma": current.get("sigma", []), "gtfobins": current.get("gtfobins", []),
        "sources": dict(current.get("sources", {})), "dropped": dict(current.get("dropped", {})),
    }
    with Progress(transient=True, disable=not sys.stderr.isatty()) as progress:
        if sigma:
            from attyguard.feeds.sigma import compile_rules

            with materialise(sigma) as (folder, ident):
                files = sorted(p for p in folder.rglob("*.yml") if p.is_file())
                if not files:
                    from attyguard.feeds.bundle import FeedError

                    raise FeedError(f"{sigma}: no Sigma rules (*.yml) found")
                task = progress.add_task("Sigma rules", total=len(files))
                kept: list[dict[str, Any]] = []
                dropped: Counter[str] = Counter()
                for file in files:
                    rules, why = compile_rules([file])
                    kept += rules
                    dropped += why
                    progress.advance(task)
                content["sigma"] = kept
                content["dropped"]["sigma"] = dict(dropped.most_common())
                content["sources"]["sigma"] = {**ident, "sha256": tree_digest(files),
                                               "files": len(files), "kept": len(kept)}
        if gtfobins:
            from attyguard.feeds.gtfobins import compile_pages

            with materialise(gtfobins) as (folder, ident):
                pages_root = next((p for p in (folder / "_gtfobins", folder) if p.is_dir()), folder)
                pages = sorted(p for p in pages_root.iterdir() if p.is_file())
                if not pages:
                    from attyguard.feeds.bundle import FeedError

                    raise FeedError(f"{gtfobins}: no GTFOBins pages found")
                task = progress.add_task("GTFOBins pages", total=1)
                shapes, why = compile_pages([pages_root])
                progress.advance(task)
                content["gtfobins"] = shapes
                content["dropped"]["gtfobins"] = dict(why.most_common())
                content["sources"]["gtfobins"] = {**ident, "sha256": tree_digest(pages),
                                                  "files": len(pages), "kept": len(shapes)}
    return content


def _status_json(bundle: dict[str, Any] | None, directory: Path) -> dict[str, Any]:
    if bundle is None:
        return {"bundle": None, "directory": str(directory)}
    return {
        "bundle": bundle.get("version"), "created": bundle.get("created"),
        "directory": str(directory), "sources": bundle.get("sources", {}),
        "counts": {"sigma": len(bundle.get("sigma", [])),
                   "gtfobins": len(bundle.get("gtfobins", []))},
        "dropped": bundle.get("dropped", {}),
    }


def _status(bundle: dict[str, Any] | None, directory: Path, as_json: bool) -> int:
    data = _status_json(bundle, directory)
    if as_json:
        write_json(data)
        return EXIT_OK
    if bundle is None:
        sys.stdout.write(f"feeds: no bundle in {directory} (run 'attyguard feeds update')\n")
        return EXIT_OK
    out = [f"bundle {data['bundle']} (created {data['created']}) in {directory}"]
    for name, src in data["sources"].items():
        commit = f" commit {src['commit'][:12]}" if src.get("commit") else ""
        out.append(f"  {name}: {src.get('kept', 0)} kept of {src.get('files', 0)} files from "
                   f"{src.get('location')}{commit} (sha256 {str(src.get('sha256', ''))[:12]})")
        for reason, count in data["dropped"].get(name, {}).items():
            out.append(f"    dropped {count}: {reason}")
    sys.stdout.write("\n".join(out) + "\n")
    return EXIT_OK
