#!/usr/bin/python3
"""Example: talk to leoam-compute from Python (Debian's python3-grpcio; run with /usr/bin/python3).

  leoam_example.py --server unix:///tmp/leoam/compute.sock generate --prompt "Once upon a time" --max-tokens 64
  leoam_example.py --server localhost:50051 tokenize "Hello world"
  leoam_example.py --server ... detokenize 1 403 407
  leoam_example.py --server ... info | stats | health

generate streams the text as it arrives (stdout), prefill progress and the final usage (stderr);
--json prints one JSON object at the end instead (token ids, text, finish reason, usage).
Exit status: 0 on success, 1 on a gRPC error (its status code and message on stderr),
2 when a generation finished with an error, 3 when health is not SERVING.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402
from google.protobuf import json_format  # noqa: E402

import leoam_client  # noqa: E402


def cmd_generate(client, args):
    kwargs = dict(max_tokens=args.max_tokens, temperature=args.temperature, top_k=args.top_k,
                  top_p=args.top_p, min_p=args.min_p, seed=args.seed, stop_strings=args.stop,
                  stop_token_ids=args.stop_token_id,
                  ignore_eos=args.ignore_eos, request_id=args.request_id,
                  report_progress=not args.no_progress and not args.json,
                  time_limit_ms=args.time_limit_ms)
    if args.token_ids:
        kwargs["token_ids"] = [int(t) for t in args.token_ids.replace(",", " ").split()]
    else:
        kwargs["text"] = args.prompt
    ids, pieces, final, request_id = [], [], None, ""
    progress_shown = False
    for response in client.generate(**kwargs):
        request_id = response.request_id or request_id
        kind = response.WhichOneof("payload")
        if kind == "progress":
            p = response.progress
            if not args.json:
                print("\r[prefill %d/%d tokens, %d cached]" % (p.processed_tokens, p.prompt_tokens,
                                                               p.cached_tokens),
                      end="", file=sys.stderr, flush=True)
                progress_shown = True
        elif kind == "chunk":
            if progress_shown:  # end the progress line before the text starts
                print(file=sys.stderr, flush=True)
                progress_shown = False
            ids.extend(response.chunk.token_ids)
            pieces.append(response.chunk.text)
            if not args.json:
                print(response.chunk.text, end="", flush=True)
        elif kind == "final":
            final = response.final
    if final is None:
        print("leoam_example: the stream ended without a final message", file=sys.stderr)
        return 2
    usage = final.usage
    if args.json:
        print(json.dumps({
            "request_id": request_id,
            "token_ids": ids,
            "text": "".join(pieces),
            "finish_reason": leoam_client.finish_reason_name(final.finish_reason),
            "error": final.error,
            "usage": json_format.MessageToDict(usage, preserving_proto_field_name=True),
        }))
    else:
        print()
        print("[%s] %d prompt tokens (%d cached: %d memory, %d disk), %d generated; TTFT %.1f ms, "
              "%.1f tokens/s" % (leoam_client.finish_reason_name(final.finish_reason),
                                 usage.prompt_tokens,
                                 usage.cached_tokens_memory + usage.cached_tokens_disk,
                                 usage.cached_tokens_memory, usage.cached_tokens_disk,
                                 usage.completion_tokens, usage.ttft_ms,
                                 usage.decode_tokens_per_second), file=sys.stderr)
    if final.finish_reason == leoam_client.pb.FINISH_REASON_ERROR:
        print("leoam_example: generation failed: %s" % final.error, file=sys.stderr)
        return 2
    return 0


def cmd_tokenize(client, args):
    print(" ".join(str(t) for t in client.tokenize(args.text, add_special=args.add_special)))
    return 0


def cmd_detokenize(client, args):
    ids = [int(t) for t in " ".join(args.ids).replace(",", " ").split()]
    print(client.detokenize(ids, render_special=args.render_special))
    return 0


def print_message(message):
    print(json_format.MessageToJson(message, preserving_proto_field_name=True,
                                  including_default_value_fields=True))


def cmd_health(client, args):
    status = client.health(args.service, timeout=args.timeout or 5.0)
    names = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}
    print(names.get(status, str(status)))
    return 0 if status == leoam_client.HEALTH_SERVING else 3


def main(argv=None):
    parser = argparse.ArgumentParser(description="LeoAM generation service: Python example client")
    parser.add_argument("--server", default=os.environ.get("LEOAM_SERVER", "unix:///tmp/leoam/compute.sock"),
                        help="unix:///path/to/socket, /path/to/socket or host:port "
                             "(default $LEOAM_SERVER or unix:///tmp/leoam/compute.sock)")
    parser.add_argument("--timeout", type=float, default=None, help="per-call deadline in seconds")
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="stream a generation")
    g.add_argument("--prompt", default="Once upon a time")
    g.add_argument("--token-ids", default="", help="prompt as token ids (space or comma separated)")
    g.add_argument("--max-tokens", type=int, default=0)
    g.add_argument("--temperature", type=float, default=0.0)
    g.add_argument("--top-k", type=int, default=0)
    g.add_argument("--top-p", type=float, default=0.0)
    g.add_argument("--min-p", type=float, default=0.0)
    g.add_argument("--seed", type=int, default=None)
    g.add_argument("--stop", action="append", default=[], help="stop string (repeatable)")
    g.add_argument("--stop-token-id", type=int, action="append", default=[],
                   help="token id that ends generation (repeatable)")
    g.add_argument("--ignore-eos", action="store_true")
    g.add_argument("--request-id", default="")
    g.add_argument("--time-limit-ms", type=int, default=0)
    g.add_argument("--no-progress", action="store_true")
    g.add_argument("--json", action="store_true")
    g.set_defaults(func=cmd_generate)

    t = sub.add_parser("tokenize", help="text -> token ids")
    t.add_argument("text")
    t.add_argument("--add-special", action="store_true", help="prepend BOS when the model asks for it")
    t.set_defaults(func=cmd_tokenize)

    d = sub.add_parser("detokenize", help="token ids -> text")
    d.add_argument("ids", nargs="+")
    d.add_argument("--render-special", action="store_true")
    d.set_defaults(func=cmd_detokenize)

    sub.add_parser("info", help="model info").set_defaults(
        func=lambda c, a: print_message(c.model_info()) or 0)
    sub.add_parser("stats", help="server info and KV tier statistics").set_defaults(
        func=lambda c, a: print_message(c.server_info()) or 0)
    h = sub.add_parser("health", help="grpc.health.v1 check (exit 0 when SERVING)")
    h.add_argument("--service", default="", help="service name; empty = the whole server")
    h.set_defaults(func=cmd_health)

    args = parser.parse_args(argv)
    try:
        with leoam_client.LeoamClient(args.server, timeout=args.timeout) as client:
            return args.func(client, args)
    except grpc.RpcError as e:
        print("leoam_example: %s: %s" % (e.code().name, e.details()), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
