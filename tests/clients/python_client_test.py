#!/usr/bin/python3
"""The Python client (client/python) against the real leoam-compute + leoam-kvstore serving stories260K.

Checks: greedy streamed generation reproduces the llama2.c reference tokens (token-id and text
prompts), the stream really streams, Tokenize/Detokenize agree with the reference ids, model info,
health, malformed requests get their documented status codes, and the example script works.
Exit 77 (skip) when python3-grpcio or the shared model is missing, except under CI=true (fail).
"""

import json
import os
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import leoam_servers  # noqa: E402

SOURCE_DIR = os.environ.get("LEOAM_SOURCE_DIR", os.path.dirname(os.path.dirname(HERE)))
CLIENT_DIR = os.path.join(SOURCE_DIR, "client", "python")

try:
    import grpc  # noqa: F401
    HAVE_GRPC = True
except ImportError:
    HAVE_GRPC = False

SERVERS = None
MODEL = None
REFERENCE = []
BOS = 1  # stories260K ends a story by emitting BOS; the reference stops before it.


def load_reference(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


class PythonClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.client = leoam_client.LeoamClient(SERVERS.address, timeout=120)
        cls.client.wait_ready(timeout=30)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()

    def assertStatus(self, code, fn):
        with self.assertRaises(grpc.RpcError) as ctx:
            fn()
        self.assertEqual(ctx.exception.code(), code, ctx.exception.details())
        self.assertTrue(ctx.exception.details(), "a status without a message")
        return ctx.exception

    def test_health_serving(self):
        self.assertEqual(self.client.health(), leoam_client.HEALTH_SERVING)

    def test_model_info(self):
        info = self.client.model_info()
        # stories260K's shape, as ../shared/models/README.md documents it.
        self.assertEqual(info.architecture, "llama")
        self.assertEqual(info.vocab_size, 512)
        self.assertEqual(info.num_layers, 5)
        self.assertEqual(info.num_heads, 8)
        self.assertEqual(info.num_kv_heads, 4)
        self.assertEqual(info.head_dim, 8)
        self.assertEqual(info.hidden_dim, 64)
        self.assertEqual(info.bos_token_id, 1)
        self.assertIn(2, list(info.eos_token_ids))
        self.assertEqual(len(info.fingerprint), 32, info.fingerprint)

    @staticmethod
    def reference_request(ref):
        """max_tokens and expected finish reason that reproduce one reference line exactly."""
        # The reference stops either at a generated BOS (then one more step yields BOS: STOP) or when
        # its positions run out (then exactly len(generated) tokens: LENGTH).
        stopped_at_bos = len(ref["prompt_ids"]) + len(ref["generated_ids"]) <= ref["positions"]
        if stopped_at_bos:
            return len(ref["generated_ids"]) + 1, leoam_client.pb.FINISH_REASON_STOP
        return len(ref["generated_ids"]), leoam_client.pb.FINISH_REASON_LENGTH

    def test_reference_generations_streamed(self):
        for ref in REFERENCE:
            with self.subTest(prompt=ref["prompt"]):
                max_tokens, reason = self.reference_request(ref)
                chunks, ids, text, final = 0, [], [], None
                for response in self.client.generate(token_ids=ref["prompt_ids"], max_tokens=max_tokens,
                                                     temperature=0.0, stop_token_ids=[BOS]):
                    kind = response.WhichOneof("payload")
                    if kind == "chunk":
                        chunks += 1
                        ids.extend(response.chunk.token_ids)
                        text.append(response.chunk.text)
                    elif kind == "final":
                        self.assertIsNone(final, "two final messages")
                        final = response.final
                self.assertEqual(ids, ref["generated_ids"])
                self.assertIsNotNone(final, "stream ended without a final message")
                self.assertEqual(final.finish_reason, reason, leoam_client.finish_reason_name(final.finish_reason))
                self.assertEqual(final.usage.prompt_tokens, len(ref["prompt_ids"]))
                self.assertEqual(final.usage.completion_tokens, len(ids))
                # Streamed: ~200 tokens must not arrive as one message.
                self.assertGreater(chunks, 1)
                # The streamed text continues the prompt as the reference printed it. (After a prompt
                # of BOS alone the reference drops the first piece's SentencePiece space; the service
                # keeps it, as llama.cpp does.)
                streamed = "".join(text)
                if ref["prompt"]:
                    self.assertEqual(ref["prompt"] + streamed, ref["text"])
                else:
                    self.assertEqual(streamed.lstrip(" "), ref["text"])
                # Detokenize of the whole sequence without its BOS is the reference text.
                self.assertEqual(self.client.detokenize(ref["prompt_ids"][1:] + ids), ref["text"])

    def test_text_prompt_matches_reference(self):
        ref = next(r for r in REFERENCE if r["prompt"])
        max_tokens, _ = self.reference_request(ref)
        ids, text, final, _ = self.client.generate_all(text=ref["prompt"], max_tokens=max_tokens,
                                                       temperature=0.0, stop_token_ids=[BOS])
        self.assertEqual(ids, ref["generated_ids"])
        self.assertEqual(final.usage.prompt_tokens, len(ref["prompt_ids"]))
        # The reference text is prompt + continuation.
        self.assertEqual(ref["prompt"] + text, ref["text"])

    def test_tokenize_round_trip(self):
        for ref in REFERENCE:
            if not ref["prompt"]:
                continue
            with self.subTest(prompt=ref["prompt"]):
                self.assertEqual(self.client.tokenize(ref["prompt"], add_special=True), ref["prompt_ids"])
                ids = self.client.tokenize(ref["prompt"], add_special=False)
                self.assertEqual(ids, ref["prompt_ids"][1:])
                self.assertEqual(self.client.detokenize(ids), ref["prompt"])

    def test_sampled_generation_is_seeded(self):
        kwargs = dict(text="Lily and Tom", max_tokens=24, temperature=0.8, top_k=40, seed=1234)
        first, _, final1, _ = self.client.generate_all(**kwargs)
        second, _, final2, _ = self.client.generate_all(**kwargs)
        self.assertEqual(first, second)
        self.assertEqual(final1.usage.seed, 1234)
        self.assertEqual(len(first), final1.usage.completion_tokens)

    def test_malformed_requests(self):
        code = grpc.StatusCode
        drain = lambda **kw: self.client.generate_all(**kw)  # noqa: E731
        vocab = self.client.model_info().vocab_size
        self.assertStatus(code.INVALID_ARGUMENT, lambda: drain())  # no prompt at all
        self.assertStatus(code.INVALID_ARGUMENT, lambda: drain(token_ids=[1, vocab]))
        self.assertStatus(code.INVALID_ARGUMENT, lambda: drain(token_ids=[1, -3]))
        self.assertStatus(code.INVALID_ARGUMENT, lambda: drain(text="a", token_ids=[1]))
        self.assertStatus(code.INVALID_ARGUMENT, lambda: drain(text="a", temperature=-1.0))
        self.assertStatus(code.INVALID_ARGUMENT, lambda: drain(text="a", temperature=float("nan")))
        self.assertStatus(code.INVALID_ARGUMENT, lambda: drain(text="a", top_p=1.5))
        self.assertStatus(code.INVALID_ARGUMENT, lambda: drain(text="a", top_k=-1))
        limit = self.client.server_info().max_tokens_limit
        self.assertGreater(limit, 0)
        self.assertStatus(code.RESOURCE_EXHAUSTED, lambda: drain(text="a", max_tokens=limit + 1))
        self.assertStatus(code.NOT_FOUND, lambda: self.client.abort("no-such-request-id"))
        # The server still serves after all that.
        ids, _, final, _ = self.client.generate_all(text="The cat", max_tokens=4)
        self.assertEqual(len(ids), 4)

    def long_generation(self, **kwargs):
        # As long as the server allows, so that it is still running when the abort/cancel arrives.
        max_tokens = min(self.client.server_info().max_tokens_limit, self.client.model_info().context_length - 16)
        return self.client.generate(text="Once upon a time", max_tokens=max_tokens, ignore_eos=True, **kwargs)

    def test_abort_by_request_id(self):
        call = self.long_generation(request_id="python-abort-test")
        chunks, final = 0, None
        for response in call:
            kind = response.WhichOneof("payload")
            if kind == "chunk":
                chunks += 1
                if chunks == 2:
                    self.client.abort("python-abort-test")
            elif kind == "final":
                final = response.final
        self.assertIsNotNone(final)
        self.assertEqual(final.finish_reason, leoam_client.pb.FINISH_REASON_CANCELLED,
                         leoam_client.finish_reason_name(final.finish_reason))
        # Once the request is gone its id is unknown. The server may drop it from its table a moment
        # after the stream ends, so this waits (bounded) for NOT_FOUND rather than expecting it at once.
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client.abort("python-abort-test")
            except grpc.RpcError as e:
                self.assertEqual(e.code(), grpc.StatusCode.NOT_FOUND, e.details())
                break
            self.assertLess(time.monotonic(), deadline, "Abort still finds the finished request after 10 s")
            time.sleep(0.01)

    def test_client_cancel(self):
        call = self.long_generation()
        chunks = 0
        with self.assertRaises(grpc.RpcError) as ctx:
            for response in call:
                if response.WhichOneof("payload") == "chunk":
                    chunks += 1
                    if chunks == 2:
                        call.cancel()
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.CANCELLED)
        ids, _, _, _ = self.client.generate_all(text="The cat", max_tokens=3)
        self.assertEqual(len(ids), 3)

    def test_example_script(self):
        ref = next(r for r in REFERENCE if r["prompt"])
        max_tokens, _ = self.reference_request(ref)
        env = dict(os.environ)
        out = subprocess.run(
            [sys.executable, os.path.join(CLIENT_DIR, "leoam_example.py"), "--server", SERVERS.address,
             "generate", "--prompt", ref["prompt"], "--max-tokens", str(max_tokens), "--stop-token-id", str(BOS),
             "--json"], env=env, capture_output=True, text=True, timeout=300)
        self.assertEqual(out.returncode, 0, out.stderr)
        result = json.loads(out.stdout)
        self.assertEqual(result["token_ids"], ref["generated_ids"])
        self.assertEqual(ref["prompt"] + result["text"], ref["text"])
        # Plain mode streams the text to stdout and the usage line to stderr.
        out = subprocess.run(
            [sys.executable, os.path.join(CLIENT_DIR, "leoam_example.py"), "--server", SERVERS.address,
             "generate", "--prompt", ref["prompt"], "--max-tokens", "16"],
            env=env, capture_output=True, text=True, timeout=300)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertTrue(ref["text"].startswith(ref["prompt"] + out.stdout.rstrip("\n")), out.stdout)
        self.assertIn("TTFT", out.stderr)
        for command in (["tokenize", ref["prompt"]], ["info"], ["stats"], ["health"]):
            out = subprocess.run([sys.executable, os.path.join(CLIENT_DIR, "leoam_example.py"), "--server",
                                  SERVERS.address] + command, env=env, capture_output=True, text=True, timeout=60)
            self.assertEqual(out.returncode, 0, "%s: %s" % (command, out.stderr))
        # A gRPC error is reported with its status name and exit status 1.
        out = subprocess.run([sys.executable, os.path.join(CLIENT_DIR, "leoam_example.py"), "--server",
                              SERVERS.address, "generate", "--token-ids", "1 999999"],
                             env=env, capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 1)
        self.assertIn("INVALID_ARGUMENT", out.stderr)


class ThroughKvStoreTest(unittest.TestCase):
    """The deployment shape: compute in leoam mode with a tiny device budget, pages in leoam-kvstore.

    Budget 1.0 attends to every page, so the reference tokens must still come out exactly; the
    server's tier statistics must show the store connected and holding pages.
    """

    def test_reference_generation_with_pages_in_the_store(self):
        ref = next(r for r in REFERENCE if r["prompt"])
        max_tokens, reason = PythonClientTest.reference_request(ref)
        with leoam_servers.LeoamServers(MODEL, with_kvstore=True) as servers:
            with leoam_client.LeoamClient(servers.address, timeout=120) as client:
                client.wait_ready(timeout=30)
                try:
                    ids, _, final, _ = client.generate_all(token_ids=ref["prompt_ids"], max_tokens=max_tokens,
                                                           stop_token_ids=[BOS])
                    self.assertEqual(ids, ref["generated_ids"])
                    self.assertEqual(final.finish_reason, reason, final.error)
                    # Decode attended to pages fetched back from the store.
                    self.assertGreater(final.usage.pages_fetched_memory + final.usage.pages_fetched_disk, 0)
                    info = client.server_info()
                    self.assertTrue(info.kvstore_connected)
                    self.assertEqual(info.kvstore_address, "unix://" + servers.kvstore_socket)
                    self.assertGreater(info.memory_tier.pages + info.disk_tier.pages, 0)
                except BaseException:
                    print(servers.logs(), file=sys.stderr)
                    raise


def main():
    global SERVERS, MODEL, REFERENCE, leoam_client
    leoam_servers.require(HAVE_GRPC, "python grpc (Debian package python3-grpcio) is not installed for %s"
                          % sys.executable)
    MODEL = leoam_servers.shared_path("models/stories260K.gguf")
    REFERENCE = load_reference(leoam_servers.shared_path("models/stories260K.greedy.jsonl"))
    sys.path.insert(0, CLIENT_DIR)
    import leoam_client as module  # needs the stubs: LEOAM_PY_STUBS
    leoam_client = module
    with leoam_servers.LeoamServers(MODEL) as servers:
        SERVERS = servers
        result = unittest.main(argv=[sys.argv[0]] + sys.argv[1:], exit=False, verbosity=2).result
        if not result.wasSuccessful():
            print(servers.logs(), file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
